"""The OpenAPI document is the truth (SPEC §13): schemathesis sends what `/openapi.json`
describes, and what it does not, to a live `automation serve` with a run in progress, and every
answer must be documented, well formed, and right about accepting or refusing the input.

Its command line (`st run`) drives the process as any client would: its four phases (the
schema's examples, boundary values, random data, chains of calls along the links it infers),
with a fixed seed and a bounded number of examples per operation.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from zoneinfo import available_timezones

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.console import AUTOMATION, bearer, environment_without_settings, free_port
from tests.factories import Tenant, create_tenant
from tests.test_serve import Service

SCHEMATHESIS = str(Path(sys.executable).with_name("st"))
SEED = 20261203
EXAMPLES_PER_OPERATION = 12
RUN_SECONDS_AT_MOST = 420
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
)
# A positive case is valid by the document, which cannot state rules that span fields or
# depend on stored state. These operations may refuse such a case with the 400 their
# description names, as SPEC §4-§9 require; every other operation must accept valid data.
BUSINESS_RULES = {
    # the run state machine: already_running, nothing_to_do, insufficient_credits,
    # invalid_transition (SPEC §5, §6)
    "^/api/v1/automation/(run_now|pause|resume|cancel)/$",
    # notification_url must be https and resolve to a public address (and needs a secret)
    "^/api/v1/automation/update_config/$",
    # the five percentages must sum to 100
    "^/api/v1/billing/sites/\\{site_id\\}/ai-budget/$",
    # publish days and slots per mode, stagger start before end
    "^/api/v1/publishing/settings/$",
    # endpoint_url must be https and public; a secret is needed unless one is kept
    "^/api/v1/publishing/integration/$",
    # only a failed publication can be retried; only content in review approved or rejected
    "^/api/v1/publishing/content/\\{content_id\\}/retry/$",
    "^/api/v1/writer/content/\\{content_id\\}/(approve|reject)/$",
    # the file must be a UTF-8 CSV with a keyword header
    "^/api/v1/planner/keywords/import/$",
    # a site's time zone must be in the IANA database (the document says so but cannot list
    # it; the fuzzing phase draws real names, the boundary values of the coverage phase not)
    "^/api/v1/sites/(\\{site_id\\}/)?$",
}
POSITIVE_STATUSES = ["2xx", "400", "401", "403", "404", "409", "429"]


@dataclass(frozen=True)
class Accounts:
    main: Tenant
    logs_out: Tenant
    revokes_keys: Tenant
    run_id: str


def toml_string(value: str) -> str:
    return json.dumps(value)


def config(accounts: Accounts, zones: list[str]) -> str:
    """The schemathesis.toml of the run."""
    main = accounts.main
    lines = [
        f"seed = {SEED}",
        # One worker: with two, schemathesis' threads race in hypothesis' parsing of lambdas
        # on Python 3.11 ("AST constructor recursion depth mismatch"), an error of the tool.
        "workers = 1",
        "request-timeout = 10",
        f"headers = {{ Authorization = {toml_string('Bearer ' + main.api_key)} }}",
        "",
        "[generation]",
        f"max-examples = {EXAMPLES_PER_OPERATION}",
        'database = "none"',
        # Every string of the API refuses NUL (PostgreSQL cannot store it; the API description
        # says so): tests/test_inputs.py covers it for every parameter.
        "allow-x00 = false",
        "",
        "[checks]",
        "enabled = false",
        *(f"{check}.enabled = true" for check in CHECKS),
        "",
        # Ids of the account's own site and run half the time, so that the operations get past
        # the lookup; time zone names from the IANA database, which the document names but
        # cannot list.
        "[dictionaries.sites]",
        f"values = [{main.site_id}]",
        "[dictionaries.runs]",
        f"values = [{toml_string(accounts.run_id)}]",
        "[dictionaries.zones]",
        f"values = [{', '.join(toml_string(zone) for zone in zones)}]",
        "",
        "[parameters]",
        '"query.site_id" = { dictionary = "sites", probability = 0.5 }',
        '"path.site_id" = { dictionary = "sites", probability = 0.5 }',
        '"query.run_id" = { dictionary = "runs", probability = 0.5 }',
        '"path.run_id" = { dictionary = "runs", probability = 0.5 }',
        '"body.timezone" = { dictionary = "zones" }',
        "",
        # Logging out revokes the key of the request, and a key's id is easily guessed: those
        # two operations use keys of accounts of their own.
        "[[operations]]",
        'include-path = "/api/v1/auth/logout"',
        f"headers = {{ Authorization = {toml_string('Bearer ' + accounts.logs_out.api_key)} }}",
        "",
        "[[operations]]",
        'include-path = "/api/v1/auth/keys/{key_id}/"',
        f"headers = {{ Authorization = {toml_string('Bearer ' + accounts.revokes_keys.api_key)} }}",
        "",
        # The live stream of a run in progress never ends: its first event is enough.
        "[[operations]]",
        'include-path = "/api/v1/automation/runs/{run_id}/events"',
        "max-stream-events = 1",
        "",
    ]
    for pattern in sorted(BUSINESS_RULES):
        lines += [
            "[[operations]]",
            f"include-path-regex = {toml_string(pattern)}",
            "checks.positive_data_acceptance.expected-statuses = "
            f"[{', '.join(toml_string(status) for status in POSITIVE_STATUSES)}]",
            "",
        ]
    lines += ["[output.sanitization]", "enabled = false", ""]
    return "\n".join(lines)


@pytest.fixture
async def service(database_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[Service]:
    """`automation serve` (API and worker) on the test database and Redis; every AI call takes
    ten minutes, so that a run stays in progress."""
    env = environment_without_settings(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        PORT=str(free_port()),
        DATA_DIR=str(tmp_path / "data"),
        ENVIRONMENT="test",
        LOG_LEVEL="WARNING",
        LOCAL_AI_LATENCY_MS="600000",
    )
    with (tmp_path / "serve.log").open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            AUTOMATION,
            "serve",
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=asyncio.subprocess.STDOUT,
        )
    running = Service(process, tmp_path / "serve.log", f"http://127.0.0.1:{env['PORT']}")
    try:
        async with httpx.AsyncClient(base_url=running.url) as http:
            await running.wait_until_ready(http)
        yield running
    finally:
        assert await running.stop() == 0, await running.log()


async def start_a_run(http: httpx.AsyncClient, tenant: Tenant) -> str:
    keywords = [{"keyword": f"{w} running shoes"} for w in ("best", "cheap", "trail", "kids")]
    added = await http.post(
        "/api/v1/planner/keywords/",
        params={"site_id": tenant.site_id},
        json={"keywords": keywords},
        headers=bearer(tenant.api_key),
    )
    assert added.status_code == 200, added.text
    started = await http.post(
        "/api/v1/automation/run_now/",
        params={"site_id": tenant.site_id},
        headers=bearer(tenant.api_key),
    )
    assert started.status_code == 200, started.text
    run_id: str = started.json()["run_id"]
    async with asyncio.timeout(30):
        while True:
            processing = await http.get(
                "/api/v1/automation/current_processing/",
                params={"site_id": tenant.site_id, "run_id": run_id},
                headers=bearer(tenant.api_key),
            )
            if processing.status_code == 200 and processing.json()["items"]:
                return run_id
            await asyncio.sleep(0.1)


@pytest.mark.timeout(RUN_SECONDS_AT_MOST + 120)
async def test_every_operation_answers_as_its_document_says(
    service: Service, session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    main = await create_tenant(session_factory, credits=Decimal(10**6))
    async with httpx.AsyncClient(base_url=service.url) as http:
        run_id = await start_a_run(http, main)
        document = (await http.get("/openapi.json")).json()
    operations = sum(len(methods) for methods in document["paths"].values())
    accounts = Accounts(
        main=main,
        logs_out=await create_tenant(session_factory),
        revokes_keys=await create_tenant(session_factory),
        run_id=run_id,
    )
    settings = tmp_path / "schemathesis.toml"
    settings.write_text(config(accounts, sorted(available_timezones())))

    output = tmp_path / "schemathesis.txt"
    with output.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            SCHEMATHESIS,
            "--no-color",
            "--config-file",
            str(settings),
            "run",
            f"{service.url}/openapi.json",
            cwd=tmp_path,
            stdout=sink,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            async with asyncio.timeout(RUN_SECONDS_AT_MOST):
                returncode = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    report = output.read_text()
    assert returncode == 0, report[report.find("FAILURES") - 40 :]
    # Every operation of the document was tried, none skipped for want of a way to call it.
    assert re.search(rf"Tested: {operations}\b", report), report
    assert re.search(r"\d+ generated", report), report
