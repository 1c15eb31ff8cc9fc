"""`automation serve --demo` end to end: embedded PostgreSQL and Redis, the API and the worker."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.console import (
    AUTOMATION,
    bearer,
    environment_without_settings,
    free_port,
    run_automation,
)

START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30


@dataclass
class Service:
    """One `automation serve --demo` process, its output going to a file."""

    process: asyncio.subprocess.Process
    output: Path
    url: str

    @classmethod
    async def start(cls, env: dict[str, str], folder: Path, name: str) -> Service:
        output = folder / f"{name}.log"
        with output.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                AUTOMATION,
                "serve",
                "--demo",
                env=env,
                cwd=folder,
                stdout=sink,
                stderr=asyncio.subprocess.STDOUT,
            )
        return cls(process, output, f"http://127.0.0.1:{env['PORT']}")

    async def demo_key(self) -> str:
        """The API key the service prints once it has its database."""
        async with asyncio.timeout(START_TIMEOUT_SECONDS):
            while True:
                text = await asyncio.to_thread(self.output.read_text)
                if found := re.search(r"API key: (\S+)", text):
                    return found.group(1)
                assert self.process.returncode is None, f"serve exited:\n{text}"
                await asyncio.sleep(0.1)

    async def wait_until_ready(self, http: httpx.AsyncClient) -> None:
        async with asyncio.timeout(START_TIMEOUT_SECONDS):
            while True:
                assert self.process.returncode is None, await self.log()
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)

    async def stop(self) -> int:
        """SIGTERM, as a process manager stops it; returns the exit status."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
                return await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise

    async def log(self) -> str:
        return await asyncio.to_thread(self.output.read_text)


async def site_names(http: httpx.AsyncClient, key: str) -> list[str]:
    response = await http.get("/api/v1/sites/", headers=bearer(key))
    assert response.status_code == 200, response.text
    return [site["name"] for site in response.json()["items"]]


class TestServeDemo:
    async def test_first_start_creates_the_demo_and_a_restart_keeps_every_row(
        self, tmp_path: Path, server_folder: Path
    ) -> None:
        env = environment_without_settings(DATA_DIR=str(server_folder), PORT=str(free_port()))

        first = await Service.start(env, tmp_path, "first")
        try:
            first_key = await first.demo_key()
            async with httpx.AsyncClient(base_url=first.url) as http:
                await first.wait_until_ready(http)
                assert await site_names(http, first_key) == ["Demo site"]
                added = await http.post(
                    "/api/v1/sites/", json={"name": "Added site"}, headers=bearer(first_key)
                )
                assert added.status_code == 201, added.text
            # An administrative command shares the embedded database with the running service.
            ran = await run_automation(
                "create-account",
                *("--name", "Second", "--email", "second@example.com", "--password", "long enough"),
                "--json",
                env=env,
                cwd=tmp_path,
            )
            assert ran.returncode == 0, ran.stderr
            second_account = json.loads(ran.stdout)
        finally:
            assert await first.stop() == 0, await first.log()
        output = await first.log()
        assert "demo@example.com / demo-password" in output
        (started,) = [line for line in output.splitlines() if "Starting worker for" in line]
        for function in (
            "run_automation",
            "notify_run",
            "cron:flush_api_key_usage",
            "cron:resume_stalled_runs",
            "cron:start_scheduled_runs",
            "cron:publish_due_content",
        ):
            assert function in started

        again = await Service.start(env, tmp_path, "again")
        try:
            again_key = await again.demo_key()
            assert again_key != first_key
            async with httpx.AsyncClient(base_url=again.url) as http:
                await again.wait_until_ready(http)
                assert await site_names(http, again_key) == ["Demo site", "Added site"]
                assert await site_names(http, first_key) == ["Demo site", "Added site"]
                me = await http.get("/api/v1/me", headers=bearer(second_account["api_key"]))
                assert me.json()["account"]["id"] == second_account["account_id"]
        finally:
            assert await again.stop() == 0, await again.log()
