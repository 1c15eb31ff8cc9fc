"""API keys, login and the caller's identity."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.main import create_app
from app.models.tenancy import ApiKey
from app.tenancy import throttle
from tests.factories import create_tenant


class TestApiKeys:
    async def test_no_key_is_401_with_the_error_body(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/me")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"

    @pytest.mark.parametrize(
        "header",
        [
            "Bearer nonsense",
            "Bearer ak_000000000000_secret",
            "Basic dXNlcjpwYXNz",
            "Bearer ",
        ],
    )
    async def test_bad_key_is_401(self, client: httpx.AsyncClient, header: str) -> None:
        response = await client.get("/api/v1/me", headers={"Authorization": header})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"

    async def test_right_prefix_wrong_secret_is_401(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        forged = tenant.api_key[:-4] + "AAAA"
        response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401

    async def test_key_is_stored_hashed_with_a_visible_prefix(
        self, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        async with session_factory() as session:
            row = await session.scalar(select(ApiKey).where(ApiKey.user_id == tenant.user_id))
        assert row is not None
        assert tenant.api_key.startswith(row.prefix + "_")
        assert tenant.api_key not in row.secret_hash
        assert len(row.secret_hash) == 64

    async def test_revoked_key_is_401(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        async with session_factory() as session, session.begin():
            row = await session.scalar(select(ApiKey).where(ApiKey.user_id == tenant.user_id))
            assert row is not None
            row.revoked_at = row.created_at
        response = await client.get("/api/v1/me", headers=tenant.headers)
        assert response.status_code == 401


class TestMe:
    async def test_me_shows_the_user_and_account_with_credits(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory, name="Acme", email="Ann@Example.com")
        response = await client.get("/api/v1/me", headers=tenant.headers)
        assert response.status_code == 200
        body = response.json()
        assert body["user"] == {"id": tenant.user_id, "email": "ann@example.com"}
        assert body["account"] == {"id": tenant.account_id, "name": "Acme", "credits": 100.0}
        assert body["ai_provider"] == {"name": "local", "text_model": None, "image_model": None}

    async def test_me_names_the_configured_openai_models(
        self, settings: Settings, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        openai = settings.model_copy(
            update={
                "ai_provider": "openai",
                "ai_api_key": SecretStr("sk-test"),
                "ai_text_model": "llama3.1",
                "ai_image_model": "flux",
            }
        )
        app = create_app(openai)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            ) as client,
        ):
            response = await client.get("/api/v1/me", headers=tenant.headers)
        assert response.json()["ai_provider"] == {
            "name": "openai",
            "text_model": "llama3.1",
            "image_model": "flux",
        }
        assert "sk-test" not in response.text


class TestLogin:
    async def test_login_returns_a_working_key(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        response = await client.post(
            "/api/v1/auth/login",
            json={"email": tenant.email.upper(), "password": tenant.password},
        )
        assert response.status_code == 200
        body = response.json()
        assert body["account_id"] == tenant.account_id
        me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['api_key']}"})
        assert me.json()["user"]["id"] == tenant.user_id

    @pytest.mark.parametrize(
        "email", ["user@example.com", "nobody@example.com", "not-an-email", "a@b.none.test"]
    )
    async def test_wrong_password_or_unknown_email_is_the_same_401(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        email: str,
    ) -> None:
        await create_tenant(session_factory, email="user@example.com")
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": "wrong"}
        )
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "wrong email or password"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"email": "", "password": "x"}, "email"),
            ({"email": "a@example.com"}, "password"),
            ({"email": "a@example.com", "password": "x", "extra": 1}, "extra"),
            ({"email": "a@example.com", "password": "x\u0000y"}, "password"),
        ],
    )
    async def test_bad_login_body_is_400_naming_the_field(
        self, client: httpx.AsyncClient, body: dict[str, object], field: str
    ) -> None:
        response = await client.post("/api/v1/auth/login", json=body)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "invalid_input"
        assert field in error["message"]

    async def test_malformed_json_is_400(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/v1/auth/login",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_input"


class TestKeyManagement:
    async def test_create_list_and_revoke_a_key(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        created = await client.post(
            "/api/v1/auth/keys/", json={"name": "ci pipeline"}, headers=tenant.headers
        )
        assert created.status_code == 201
        new = created.json()
        assert new["api_key"].startswith(new["prefix"] + "_")
        new_headers = {"Authorization": f"Bearer {new['api_key']}"}
        assert (await client.get("/api/v1/me", headers=new_headers)).status_code == 200

        listing = await client.get("/api/v1/auth/keys/", headers=tenant.headers)
        keys = listing.json()["items"]
        assert [(k["name"], k["current"], k["revoked_at"]) for k in keys] == [
            ("default", True, None),
            ("ci pipeline", False, None),
        ]
        assert all("api_key" not in k and "secret_hash" not in k for k in keys)

        revoked = await client.delete(f"/api/v1/auth/keys/{new['id']}/", headers=tenant.headers)
        assert revoked.status_code == 204
        assert (await client.get("/api/v1/me", headers=new_headers)).status_code == 401
        again = await client.delete(f"/api/v1/auth/keys/{new['id']}/", headers=tenant.headers)
        assert again.status_code == 204
        listing = await client.get("/api/v1/auth/keys/", headers=tenant.headers)
        assert listing.json()["items"][1]["revoked_at"] is not None

    async def test_logout_revokes_the_key_of_the_request_only(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        login = await client.post(
            "/api/v1/auth/login", json={"email": tenant.email, "password": tenant.password}
        )
        session_headers = {"Authorization": f"Bearer {login.json()['api_key']}"}
        response = await client.post("/api/v1/auth/logout", headers=session_headers)
        assert response.status_code == 204
        assert (await client.get("/api/v1/me", headers=session_headers)).status_code == 401
        assert (await client.get("/api/v1/me", headers=tenant.headers)).status_code == 200

    async def test_key_name_is_required(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        response = await client.post("/api/v1/auth/keys/", json={}, headers=tenant.headers)
        assert response.status_code == 400
        assert "name" in response.json()["error"]["message"]


class TestLoginThrottle:
    async def test_ten_failures_block_the_email_even_with_the_right_password(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        wrong = {"email": tenant.email, "password": "guess"}
        for _ in range(throttle.MAX_FAILURES):
            assert (await client.post("/api/v1/auth/login", json=wrong)).status_code == 401
        right = {"email": tenant.email.upper(), "password": tenant.password}
        blocked = await client.post("/api/v1/auth/login", json=right)
        assert blocked.status_code == 429
        assert blocked.json()["error"]["code"] == "too_many_requests"
        assert 0 < int(blocked.headers["retry-after"]) <= throttle.WINDOW_SECONDS
        other = await create_tenant(session_factory)
        allowed = await client.post(
            "/api/v1/auth/login", json={"email": other.email, "password": other.password}
        )
        assert allowed.status_code == 200

    async def test_a_success_clears_earlier_failures(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        wrong = {"email": tenant.email, "password": "guess"}
        right = {"email": tenant.email, "password": tenant.password}
        for _ in range(throttle.MAX_FAILURES - 1):
            await client.post("/api/v1/auth/login", json=wrong)
        assert (await client.post("/api/v1/auth/login", json=right)).status_code == 200
        for _ in range(throttle.MAX_FAILURES - 1):
            await client.post("/api/v1/auth/login", json=wrong)
        assert (await client.post("/api/v1/auth/login", json=right)).status_code == 200
