"""API keys, login and the caller's identity."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Literal

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.errors import TooManyRequests
from app.main import create_app
from app.models.tenancy import ApiKey, LoginFailures
from app.tenancy import security, throttle
from app.tenancy.security import PasswordChecks
from app.tenancy.usage import USAGE_KEY
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


class TestVerifiedKeys:
    """A key found valid is remembered for a second by the process (app) that checked it."""

    async def test_a_key_revoked_through_another_process_is_refused_within_two_seconds(
        self,
        client: httpx.AsyncClient,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
    ) -> None:
        tenant = await create_tenant(session_factory)
        other = create_app(settings)
        async with (
            other.router.lifespan_context(other),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=other), base_url="http://other"
            ) as other_client,
        ):
            created = await client.post(
                "/api/v1/auth/keys/", json={"name": "script"}, headers=tenant.headers
            )
            key = created.json()
            key_headers = {"Authorization": f"Bearer {key['api_key']}"}
            # Both processes have checked the key, and remember it.
            assert (await client.get("/api/v1/me", headers=key_headers)).status_code == 200
            assert (await other_client.get("/api/v1/me", headers=key_headers)).status_code == 200

            revoked = await other_client.delete(
                f"/api/v1/auth/keys/{key['id']}/", headers=tenant.headers
            )
            assert revoked.status_code == 204
            revoked_at = time.monotonic()
            assert (await other_client.get("/api/v1/me", headers=key_headers)).status_code == 401
            while (await client.get("/api/v1/me", headers=key_headers)).status_code == 200:
                assert time.monotonic() - revoked_at <= 2
                await asyncio.sleep(0.05)
            assert (await client.get("/api/v1/me", headers=tenant.headers)).status_code == 200

    async def test_a_key_revoked_in_the_database_is_refused_within_two_seconds(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        assert (await client.get("/api/v1/me", headers=tenant.headers)).status_code == 200
        async with session_factory() as session, session.begin():
            await session.execute(
                update(ApiKey).where(ApiKey.user_id == tenant.user_id).values(revoked_at=func.now())
            )
        revoked_at = time.monotonic()
        while (await client.get("/api/v1/me", headers=tenant.headers)).status_code == 200:
            assert time.monotonic() - revoked_at <= 2
            await asyncio.sleep(0.05)

    async def test_the_use_of_a_key_is_noted_once_per_interval_not_per_request(
        self,
        client: httpx.AsyncClient,
        redis: Redis,
        session_factory: async_sessionmaker[AsyncSession],
    ) -> None:
        tenant = await create_tenant(session_factory)
        async with session_factory() as session:
            key_id = await session.scalar(select(ApiKey.id).where(ApiKey.user_id == tenant.user_id))
        assert (await client.get("/api/v1/me", headers=tenant.headers)).status_code == 200
        first = await redis.hget(USAGE_KEY, str(key_id))  # type: ignore[misc]
        assert first is not None
        await asyncio.sleep(0.01)
        assert (await client.get("/api/v1/me", headers=tenant.headers)).status_code == 200
        assert await redis.hget(USAGE_KEY, str(key_id)) == first  # type: ignore[misc]


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


def _wrong(email: str) -> dict[str, str]:
    return {"email": email, "password": "a wrong guess"}


@pytest.fixture
def roomy_password_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A line long enough that no parallel login of a test is refused for a full one."""
    monkeypatch.setattr(security, "password_checks", PasswordChecks(workers=2, queue=40))


class TestLoginThrottle:
    async def test_ten_failures_block_the_email_even_with_the_right_password(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        for _ in range(throttle.EMAIL_MAX_FAILURES):
            response = await client.post("/api/v1/auth/login", json=_wrong(tenant.email))
            assert response.status_code == 401
        right = {"email": tenant.email.upper(), "password": tenant.password}
        blocked = await client.post("/api/v1/auth/login", json=right)
        assert blocked.status_code == 429
        assert blocked.json()["error"]["code"] == "too_many_requests"
        assert "email" in blocked.json()["error"]["message"]
        # Blocked for the whole window from the failure that reached the limit.
        assert int(blocked.headers["retry-after"]) > throttle.WINDOW_SECONDS - 60
        assert int(blocked.headers["retry-after"]) <= throttle.WINDOW_SECONDS
        other = await create_tenant(session_factory)
        allowed = await client.post(
            "/api/v1/auth/login", json={"email": other.email, "password": other.password}
        )
        assert allowed.status_code == 200

    async def test_a_success_clears_earlier_failures(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        right = {"email": tenant.email, "password": tenant.password}
        for _ in range(throttle.EMAIL_MAX_FAILURES - 1):
            await client.post("/api/v1/auth/login", json=_wrong(tenant.email))
        assert (await client.post("/api/v1/auth/login", json=right)).status_code == 200
        for _ in range(throttle.EMAIL_MAX_FAILURES - 1):
            await client.post("/api/v1/auth/login", json=_wrong(tenant.email))
        assert (await client.post("/api/v1/auth/login", json=right)).status_code == 200

    @pytest.mark.usefixtures("roomy_password_checks")
    async def test_parallel_wrong_logins_get_no_more_password_checks_than_the_limit(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        tenant = await create_tenant(session_factory)
        answers = await asyncio.gather(
            *(
                client.post("/api/v1/auth/login", json=_wrong(tenant.email))
                for _ in range(2 * throttle.EMAIL_MAX_FAILURES)
            )
        )
        statuses = Counter(a.status_code for a in answers)
        assert statuses == {401: throttle.EMAIL_MAX_FAILURES, 429: throttle.EMAIL_MAX_FAILURES}
        right = {"email": tenant.email, "password": tenant.password}
        assert (await client.post("/api/v1/auth/login", json=right)).status_code == 429

    async def test_one_address_trying_many_emails_is_blocked_for_every_email(
        self,
        app: FastAPI,
        session_factory: async_sessionmaker[AsyncSession],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # A lower limit than production's, to keep the test short: the mechanism is the same.
        limit = throttle.EMAIL_MAX_FAILURES + 2
        monkeypatch.setattr(throttle, "ADDRESS_MAX_FAILURES", limit)
        tenant = await create_tenant(session_factory)
        right = {"email": tenant.email, "password": tenant.password}
        async with _client_from(app, "203.0.113.7") as attacker:
            for n in range(limit):
                response = await attacker.post(
                    "/api/v1/auth/login", json=_wrong(f"a{n}@example.com")
                )
                assert response.status_code == 401
            blocked = await attacker.post("/api/v1/auth/login", json=right)
            assert blocked.status_code == 429
            assert "address" in blocked.json()["error"]["message"]
            assert int(blocked.headers["retry-after"]) > 0
        async with _client_from(app, "198.51.100.20") as elsewhere:
            assert (await elsewhere.post("/api/v1/auth/login", json=right)).status_code == 200

    async def test_an_ipv6_client_is_one_address_across_its_64(
        self, app: FastAPI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(throttle, "ADDRESS_MAX_FAILURES", 2)
        for n, host in enumerate(("2001:db8:7:7::1", "2001:db8:7:7::2")):
            async with _client_from(app, host) as client:
                response = await client.post("/api/v1/auth/login", json=_wrong(f"{n}@example.com"))
                assert response.status_code == 401
        async with _client_from(app, "2001:db8:7:7:ffff::3") as client:
            response = await client.post("/api/v1/auth/login", json=_wrong("c@example.com"))
            assert response.status_code == 429
        async with _client_from(app, "2001:db8:7:8::1") as client:
            response = await client.post("/api/v1/auth/login", json=_wrong("d@example.com"))
            assert response.status_code == 401

    async def test_a_success_does_not_clear_its_address_of_other_failures(
        self,
        app: FastAPI,
        session_factory: async_sessionmaker[AsyncSession],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(throttle, "ADDRESS_MAX_FAILURES", 3)
        own = await create_tenant(session_factory)
        right = {"email": own.email, "password": own.password}
        async with _client_from(app, "203.0.113.8") as client:
            # An attacker logging in to an account of its own between guesses.
            for n in range(3):
                assert (await client.post("/api/v1/auth/login", json=right)).status_code == 200
                response = await client.post("/api/v1/auth/login", json=_wrong(f"v{n}@example.com"))
                assert response.status_code == 401
            assert (await client.post("/api/v1/auth/login", json=right)).status_code == 429


class TestLoginCounts:
    async def test_parallel_attempts_are_counted_one_by_one(
        self, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        attempt = throttle.login_attempt("Someone@Example.com", "192.0.2.1")
        results = await asyncio.gather(
            *(
                throttle.count_attempt(session_factory, attempt)
                for _ in range(2 * throttle.EMAIL_MAX_FAILURES)
            ),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, TooManyRequests)]
        assert len(refused) == throttle.EMAIL_MAX_FAILURES
        assert results.count(None) == throttle.EMAIL_MAX_FAILURES
        async with session_factory() as session:
            counts = dict(
                (await session.execute(select(LoginFailures.scope, LoginFailures.failures))).all()
            )
        # A refused attempt counts nothing, for the address either.
        assert counts == {
            "email": throttle.EMAIL_MAX_FAILURES,
            "address": throttle.EMAIL_MAX_FAILURES,
        }

    async def test_an_ended_window_counts_from_one_and_ended_rows_are_swept(
        self, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        for n in range(throttle.SWEEP_BATCH):
            attempt = throttle.login_attempt(f"old{n}@example.com", "192.0.2.3")
            await throttle.count_attempt(session_factory, attempt)
        blocked = throttle.login_attempt("blocked@example.com", "192.0.2.3")
        for _ in range(throttle.EMAIL_MAX_FAILURES):
            await throttle.count_attempt(session_factory, blocked)
        with pytest.raises(TooManyRequests):
            await throttle.count_attempt(session_factory, blocked)
        window = timedelta(seconds=throttle.WINDOW_SECONDS)
        async with session_factory() as session, session.begin():
            await session.execute(update(LoginFailures).values(window_ends_at=func.now() - window))

        await throttle.count_attempt(session_factory, blocked)

        async with session_factory() as session:
            rows = (
                await session.execute(select(LoginFailures.subject, LoginFailures.failures))
            ).all()
        assert sorted(rows) == [("192.0.2.3", 1), ("blocked@example.com", 1)]


class _HeldHasher(PasswordHasher):
    """A hasher whose verifications wait until released, counting how many run at once."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.release = threading.Event()
        self._lock = threading.Condition()
        self.running = 0
        self.most_at_once = 0
        self.niceness: set[int] = set()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.niceness.add(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            self._lock.notify_all()
        try:
            self.release.wait()
            return super().verify(hash, password)
        finally:
            with self._lock:
                self.running -= 1

    def wait_running(self, count: int) -> None:
        with self._lock:
            self._lock.wait_for(lambda: self.running == count)


class TestPasswordCheckBound:
    async def test_a_burst_of_logins_runs_few_checks_refuses_the_overflow_and_others_go_on(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        tenant = await create_tenant(session_factory)
        workers, queue, burst = 2, 3, 40
        hasher = _HeldHasher()
        monkeypatch.setattr(security, "_hasher", hasher)
        monkeypatch.setattr(security, "password_checks", PasswordChecks(workers, queue))
        logins = [
            asyncio.create_task(
                client.post("/api/v1/auth/login", json=_wrong(f"burst{n}@example.com"))
            )
            for n in range(burst)
        ]
        try:
            await asyncio.to_thread(hasher.wait_running, workers)
            # The overflow is refused at once, while every admitted login waits for its check.
            refused: list[asyncio.Task[httpx.Response]] = []
            async with asyncio.timeout(30):
                while len(refused) < burst - workers - queue:
                    pending = set(logins) - set(refused)
                    await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    refused = [t for t in logins if t.done()]
            assert hasher.running == workers
            for task in refused:
                assert task.result().status_code == 503
                assert task.result().json()["error"]["code"] == "unavailable"
                assert task.result().headers["retry-after"] == "1"
            # Other requests, and the event loop's own threads, do not wait behind the checks.
            assert (await client.get("/api/v1/me", headers=tenant.headers)).status_code == 200
            assert await asyncio.to_thread(lambda: "free") == "free"
        finally:
            hasher.release.set()
        answered = await asyncio.gather(*logins)
        assert Counter(a.status_code for a in answered) == {
            401: workers + queue,
            503: burst - workers - queue,
        }
        assert hasher.most_at_once == workers
        # The checks run at a lower CPU priority than the event loop's thread.
        loop_niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        assert hasher.niceness == {min(loop_niceness + security.CHECK_NICENESS, 19)}


def _client_from(app: FastAPI, host: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")
