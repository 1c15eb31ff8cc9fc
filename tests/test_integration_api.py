"""The site's publisher through the API (SPEC §6b, §13): validated per kind, URLs guarded against
SSRF, the secret write-only (never in an answer, an error or a log), and another account's site
answering like a missing one."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models.publishing import PublishingIntegration
from tests.factories import Tenant, create_tenant
from tests.servers.webhook_receiver import serve_webhook_receiver
from tests.servers.wordpress import serve_wordpress

URL = "/api/v1/publishing/integration/"
CHECK = "/api/v1/publishing/integration/test/"
PASSWORD = "abcd efgh ijkl mnop qrst uvwx"
SIGNING_KEY = "whsec-0123456789abcdef-signing"
SessionFactory = async_sessionmaker[AsyncSession]


@pytest.fixture
async def tenant(session_factory: SessionFactory) -> Tenant:
    return await create_tenant(session_factory)


@pytest.fixture
def private_urls_allowed(app: FastAPI, settings: Settings) -> Iterator[None]:
    """The app as a development setup runs it: peers on 127.0.0.1 over http are allowed."""
    app.state.settings = settings.model_copy(
        update={"allow_private_urls": True, "allow_http_urls": True}
    )
    yield
    app.state.settings = settings


async def put(client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]) -> httpx.Response:
    return await client.put(
        URL, params={"site_id": tenant.site_id}, json=body, headers=tenant.headers
    )


async def get(client: httpx.AsyncClient, tenant: Tenant) -> httpx.Response:
    return await client.get(URL, params={"site_id": tenant.site_id}, headers=tenant.headers)


def wordpress(**changes: Any) -> dict[str, Any]:
    body = {
        "kind": "wordpress",
        "endpoint_url": "http://127.0.0.1:8089/",
        "username": "editor",
        "secret": PASSWORD,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


async def stored(session_factory: SessionFactory, tenant: Tenant) -> PublishingIntegration | None:
    async with session_factory() as session:
        found: PublishingIntegration | None = await session.scalar(
            select(PublishingIntegration).where(PublishingIntegration.site_id == tenant.site_id)
        )
        return found


class TestReading:
    async def test_a_site_never_set_up_publishes_with_none(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        response = await get(client, tenant)

        assert response.status_code == 200
        assert response.json() == {
            "site_id": tenant.site_id,
            "kind": "none",
            "endpoint_url": None,
            "username": None,
            "is_active": True,
            "secret_set": False,
            "updated_at": None,
        }
        assert await stored(session_factory, tenant) is None

    async def test_another_accounts_site_is_not_found(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        intruder = await create_tenant(session_factory)

        read = await client.get(URL, params={"site_id": tenant.site_id}, headers=intruder.headers)
        written = await client.put(
            URL,
            params={"site_id": tenant.site_id},
            json={"kind": "none"},
            headers=intruder.headers,
        )

        assert (read.status_code, written.status_code) == (404, 404)
        assert await stored(session_factory, tenant) is None


@pytest.mark.usefixtures("private_urls_allowed")
class TestSaving:
    async def test_wordpress_is_saved_and_its_password_never_shown(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        saved = await put(client, tenant, wordpress())
        read = await get(client, tenant)

        assert saved.status_code == 200, saved.text
        assert read.json() == saved.json()
        body = read.json()
        assert body["kind"] == "wordpress"
        assert body["endpoint_url"] == "http://127.0.0.1:8089"
        assert body["username"] == "editor"
        assert body["secret_set"] is True
        assert PASSWORD not in saved.text + read.text
        row = await stored(session_factory, tenant)
        assert row is not None
        assert row.secret == PASSWORD

    async def test_the_password_may_be_left_out_to_keep_it_while_the_url_stays(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        await put(client, tenant, wordpress())

        kept = await put(client, tenant, wordpress(secret=None, username="author"))
        moved = await put(
            client, tenant, wordpress(secret=None, endpoint_url="http://127.0.0.2:8089")
        )

        assert kept.status_code == 200, kept.text
        assert kept.json()["secret_set"] is True
        assert moved.status_code == 400
        assert moved.json()["error"]["details"] == [
            {
                "field": "secret",
                "message": "is required for kind wordpress (again when the kind or "
                "endpoint_url changes)",
            }
        ]
        row = await stored(session_factory, tenant)
        assert row is not None
        assert (row.username, row.endpoint_url, row.secret) == (
            "author",
            "http://127.0.0.1:8089",
            PASSWORD,
        )

    async def test_a_webhook_needs_a_signing_key_of_16_characters(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        url = "http://127.0.0.1:9000/hooks"
        missing = await put(client, tenant, {"kind": "webhook", "endpoint_url": url})
        short = await put(
            client, tenant, {"kind": "webhook", "endpoint_url": url, "secret": "short-key"}
        )
        saved = await put(
            client, tenant, {"kind": "webhook", "endpoint_url": url, "secret": SIGNING_KEY}
        )

        assert missing.status_code == 400
        assert missing.json()["error"]["details"][0]["field"] == "secret"
        assert short.status_code == 400
        assert short.json()["error"]["details"] == [
            {"field": "secret", "message": "Value error, must have at least 16 characters"}
        ]
        assert "short-key" not in short.text
        assert saved.status_code == 200, saved.text
        assert saved.json()["endpoint_url"] == url

    async def test_switching_to_none_forgets_the_secret(
        self, client: httpx.AsyncClient, session_factory: SessionFactory, tenant: Tenant
    ) -> None:
        await put(client, tenant, wordpress())

        response = await put(client, tenant, {"kind": "none"})

        assert response.status_code == 200, response.text
        assert response.json()["secret_set"] is False
        row = await stored(session_factory, tenant)
        assert row is not None
        assert (row.kind, row.endpoint_url, row.username, row.secret) == ("none", None, None, None)

    @pytest.mark.parametrize(
        ("body", "fields"),
        [
            (wordpress(endpoint_url=None), ["endpoint_url"]),
            (wordpress(username=None), ["username"]),
            (wordpress(secret=None), ["secret"]),
            ({"kind": "none", "endpoint_url": "http://127.0.0.1:1"}, ["endpoint_url"]),
            (
                {"kind": "webhook", "endpoint_url": "http://127.0.0.1:1", "username": "x"},
                ["username"],
            ),
            ({"kind": "ftp"}, ["kind"]),
            ({"endpoint_url": "http://127.0.0.1:1"}, ["kind"]),
            (wordpress(password="x"), ["password"]),
            (wordpress(is_active="maybe"), ["is_active"]),
            (wordpress(secret="bad\x00secret"), ["secret"]),
        ],
        ids=[
            "wordpress-no-url",
            "wordpress-no-user",
            "wordpress-no-password",
            "none-with-url",
            "webhook-with-user",
            "unknown-kind",
            "no-kind",
            "unknown-field",
            "bad-type",
            "nul",
        ],
    )
    async def test_bad_input_is_a_400_naming_the_fields_and_changes_nothing(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        tenant: Tenant,
        body: dict[str, Any],
        fields: list[str],
    ) -> None:
        response = await put(client, tenant, body)

        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_input"
        assert [d["field"] for d in error["details"]] == fields
        assert await stored(session_factory, tenant) is None


@pytest.mark.usefixtures("private_urls_allowed")
class TestCheck:
    async def check(self, client: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
        response = await client.post(
            CHECK, params={"site_id": tenant.site_id}, headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def test_wordpress_signs_in_with_the_saved_password(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        async with serve_wordpress(password=PASSWORD) as site:
            await put(client, tenant, wordpress(endpoint_url=site.url))
            works = await self.check(client, tenant)
            await put(client, tenant, wordpress(endpoint_url=site.url, secret="wrong password"))
            refused = await self.check(client, tenant)

        assert works == {
            "kind": "wordpress",
            "ok": True,
            "message": "signed in to WordPress as Editor",
        }
        assert refused == {
            "kind": "wordpress",
            "ok": False,
            "message": "WordPress (sign in) answered HTTP 401: incorrect_password: "
            "The provided password is incorrect.",
        }
        assert site.posts == []

    async def test_a_webhook_gets_a_signed_ping(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        async with serve_webhook_receiver(SIGNING_KEY) as receiver:
            await put(
                client,
                tenant,
                {"kind": "webhook", "endpoint_url": receiver.url, "secret": SIGNING_KEY},
            )
            result = await self.check(client, tenant)

        assert result == {
            "kind": "webhook",
            "ok": True,
            "message": "the webhook accepted a signed ping",
        }
        [ping] = receiver.deliveries
        assert ping.verified
        assert ping.payload == {"event": "ping"}
        assert receiver.articles == {}

    async def test_a_peer_that_is_down_is_reported(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        async with serve_wordpress() as site:
            gone = site.url
        await put(client, tenant, wordpress(endpoint_url=gone))

        result = await self.check(client, tenant)

        assert result == {
            "kind": "wordpress",
            "ok": False,
            "message": (
                "could not reach WordPress (sign in): ConnectError: All connection attempts failed"
            ),
        }

    async def test_none_has_nothing_to_check(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        assert await self.check(client, tenant) == {
            "kind": "none",
            "ok": True,
            "message": "nothing to connect to: due articles are marked published",
        }


class TestUrlGuard:
    @pytest.mark.parametrize(
        ("url", "reason"),
        [
            ("https://127.0.0.1/", "does not resolve to a public address"),
            ("https://10.1.2.3/", "does not resolve to a public address"),
            ("https://169.254.169.254/", "does not resolve to a public address"),
            ("https://localhost/", "does not resolve to a public address"),
            ("http://93.184.215.14/", "must use https, not 'http'"),
            ("https://user:pw@93.184.215.14/", "must not carry a user name or password"),
        ],
    )
    async def test_an_unsafe_url_is_refused_naming_the_field(
        self,
        client: httpx.AsyncClient,
        session_factory: SessionFactory,
        tenant: Tenant,
        url: str,
        reason: str,
    ) -> None:
        response = await put(client, tenant, wordpress(endpoint_url=url))

        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_url"
        assert error["details"][0]["field"] == "endpoint_url"
        assert reason in error["details"][0]["message"]
        assert await stored(session_factory, tenant) is None


@pytest.mark.usefixtures("private_urls_allowed")
class TestSecretsStayOut:
    async def test_no_answer_error_or_log_line_carries_a_secret(
        self, client: httpx.AsyncClient, tenant: Tenant, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        answers = [
            await put(client, tenant, wordpress()),
            await get(client, tenant),
            await put(client, tenant, wordpress(endpoint_url="ftp://blog.example.com/")),
            await put(client, tenant, wordpress(username=None)),
            await put(client, tenant, wordpress(extra=1)),
            await put(
                client,
                tenant,
                {"kind": "webhook", "endpoint_url": "http://127.0.0.1:9/", "secret": SIGNING_KEY},
            ),
            await put(client, tenant, {"kind": "webhook", "endpoint_url": "x", "secret": "tiny"}),
            await get(client, tenant),
        ]

        assert [a.status_code for a in answers] == [200, 200, 400, 400, 400, 200, 400, 200]
        for secret in (PASSWORD, SIGNING_KEY, "tiny"):
            assert all(secret not in a.text for a in answers)
            assert secret not in caplog.text
