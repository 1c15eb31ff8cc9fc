"""Auto-approval and auto-publishing are off until a user turns them on.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 19:01:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for column in ("auto_approval_enabled", "auto_publish_enabled"):
        op.alter_column("publishing_settings", column, server_default="false")


def downgrade() -> None:
    for column in ("auto_approval_enabled", "auto_publish_enabled"):
        op.alter_column("publishing_settings", column, server_default="true")
