"""The run's progress plan: how many items each stage is to handle, fixed at the start and
re-planned at each stage's end (app.runs.plan), so that the run's progress never runs backwards
and an ended run's figures never change.

Runs from before this revision get a plan of their `initial_snapshot`'s counts (basis
`snapshot`, nothing projected): an ended run then reads its figures from its row like any other,
and one still active goes on from there. The downgrade drops the column.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-11 17:01:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAGES = range(1, 8)


def _snapshot_stage(n: int) -> str:
    items = f"GREATEST(COALESCE((initial_snapshot->>'stage_{n}_initial')::bigint, 0), 0)"
    return f"jsonb_build_object('items', {items}, 'credits', '0', 'seconds_per_item', NULL)"


def upgrade() -> None:
    op.add_column(
        "automation_runs",
        sa.Column("progress_plan", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    stages = ", ".join(_snapshot_stage(n) for n in STAGES)
    plan = (
        "jsonb_build_object('basis', 'snapshot', 'floor', 0, 'between_stage_delay', 0, "
        f"'replanned_after', 0, 'stages', jsonb_build_array({stages}))"
    )
    op.execute(f"UPDATE automation_runs SET progress_plan = {plan}")  # noqa: S608 - no input
    op.alter_column("automation_runs", "progress_plan", nullable=False)


def downgrade() -> None:
    op.drop_column("automation_runs", "progress_plan")
