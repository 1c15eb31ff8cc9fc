"""Effects after commit: what a transaction sets off outside PostgreSQL (a job queued, a Redis
signal sent, live state cleared) is registered on its session and run by the unit of work
(`app.db.unit_of_work`) only once the transaction has committed, so nobody acts on a change that
is not there. A rollback drops them: of the whole transaction, or of the savepoint they were
registered in. The unit of work commits once, at its end: nothing inside one commits by hand.

One failure policy: an effect that fails is logged with its name and the others still run. The
commit has been made and is not undone; what the effect would have done is made up for by the
cron or the reaper (a lost slice is queued again, a lost publish pass is the cron's next, a lost
signal is read from the run row). An effect given an `Outage` reports a backend outage through
it, once per outage, as `app.outage.best_effort` does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from app.errors import is_backend_down
from app.outage import Outage

log = structlog.get_logger(__name__)

Action = Callable[[], Awaitable[object]]

# The key of the session's `info` that holds its effects; present only inside a unit of work.
_EFFECTS = "effects_after_commit"


@dataclass(frozen=True)
class Effect:
    name: str
    action: Action
    outage: Outage | None
    # The innermost transaction (a savepoint, or the session's own) it was registered in.
    transaction: SessionTransaction | None


def after_commit(
    session: AsyncSession, action: Action, *, name: str, outage: Outage | None = None
) -> None:
    """Run `action()` once the session's transaction has committed; never if it rolls back.

    `action` is called then, not now: bind its arguments now (`functools.partial`)."""
    effects: list[Effect] | None = session.info.get(_EFFECTS)
    if effects is None:
        raise RuntimeError(f"effect {name!r} registered outside a unit of work: it would never run")
    sync = session.sync_session
    transaction = sync.get_nested_transaction() or sync.get_transaction()
    effects.append(Effect(name, action, outage, transaction))


def begin_effects(session: AsyncSession) -> None:
    """Let the session carry effects (the unit of work's opening)."""
    session.info[_EFFECTS] = []


def take_effects(session: AsyncSession) -> list[Effect]:
    """The session's effects, which it no longer carries."""
    effects: list[Effect] = session.info.pop(_EFFECTS, [])
    return effects


async def run_effects(effects: list[Effect]) -> None:
    """Run committed effects in the order they were registered, each failure logged."""
    for effect in effects:
        try:
            await effect.action()
        except Exception as exc:
            _failed(effect, exc)
        else:
            if effect.outage is not None:
                effect.outage.over()


def _failed(effect: Effect, error: Exception) -> None:
    if not is_backend_down(error):
        log.exception(
            "effect after commit failed; the cron or the reaper makes up for it",
            effect=effect.name,
        )
    elif effect.outage is not None:
        effect.outage.met(error)
    else:
        log.warning(
            "effect after commit skipped: backend unreachable; the cron or the reaper makes up "
            "for it",
            effect=effect.name,
            error=str(error),
        )


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, rolled_back: SessionTransaction) -> None:
    """A rolled-back savepoint drops the effects registered in it (or in savepoints inside it);
    the session's own transaction rolled back drops them all."""
    effects: list[Effect] | None = session.info.get(_EFFECTS)
    if not effects:
        return
    if rolled_back.parent is None:
        effects.clear()
        return
    effects[:] = [e for e in effects if not _inside(e.transaction, rolled_back)]


def _inside(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False
