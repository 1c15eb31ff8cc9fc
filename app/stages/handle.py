"""A run as the worker driving it holds it: its ids and the fence number its lease was given.
Every write of the worker to the run row is fenced, so a worker that lost the run writes nothing."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Update, update

from app.models.automation import AutomationRun


class LeaseLost(Exception):
    """The run's fence moved on: another worker has taken the run; this one must stop."""


@dataclass(frozen=True)
class RunHandle:
    """The run as a worker holds it: `fence` is the number its lease was given."""

    id: int
    run_id: str
    account_id: int
    site_id: int
    fence: int


def fenced(run: RunHandle) -> Update:
    """An UPDATE of the run that touches nothing unless this worker still holds it."""
    return update(AutomationRun).where(AutomationRun.id == run.id, AutomationRun.fence == run.fence)
