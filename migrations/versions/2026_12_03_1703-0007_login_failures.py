"""Failed logins per email and per client address, counted in PostgreSQL instead of Redis.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 17:03:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=320), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "scope IN ('email', 'address')", name=op.f("ck_login_failures_scope_valid")
        ),
        sa.PrimaryKeyConstraint("scope", "subject", name=op.f("pk_login_failures")),
    )
    op.create_index(op.f("ix_login_failures_window_ends_at"), "login_failures", ["window_ends_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_login_failures_window_ends_at"), table_name="login_failures")
    op.drop_table("login_failures")
