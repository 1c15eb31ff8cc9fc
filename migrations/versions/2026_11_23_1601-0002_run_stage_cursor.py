"""The run's stage cursor: how far the current stage's finished batches reached.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 16:01:51.713753+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "automation_runs",
        sa.Column("stage_cursor", sa.BigInteger(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("automation_runs", "stage_cursor")
