"""Run notifications per site, and the publisher's attempts and claim on content.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 17:01:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "automation_configs", sa.Column("notification_url", sa.String(length=2000), nullable=True)
    )
    op.add_column("automation_configs", sa.Column("notification_secret", sa.Text(), nullable=True))
    op.add_column(
        "contents",
        sa.Column("publish_attempts", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "contents",
        sa.Column("publish_claimed_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("contents", "publish_claimed_at")
    op.drop_column("contents", "publish_attempts")
    op.drop_column("automation_configs", "notification_secret")
    op.drop_column("automation_configs", "notification_url")
