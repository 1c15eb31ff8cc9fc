"""The reference's behaviours: a cancelled run has ended, so it has a `completed_at`.

Runs cancelled before this revision get their cancellation time as their end. The downgrade
leaves them so: the earlier code reads `completed_at or cancelled_at` alike.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 17:01:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE automation_runs SET completed_at = cancelled_at "
        "WHERE status = 'cancelled' AND completed_at IS NULL"
    )


def downgrade() -> None:
    pass
