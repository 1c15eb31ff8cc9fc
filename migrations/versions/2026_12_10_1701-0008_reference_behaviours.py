"""The reference's behaviours: a cancelled run has ended; auto-approval and auto-publishing are on
for new sites.

- Runs cancelled before this revision get their cancellation time as their end (`completed_at`).
  The downgrade leaves them so: the earlier code reads `completed_at or cancelled_at` alike.
- `publishing_settings.auto_approval_enabled` and `auto_publish_enabled` default to true, as in
  the reference (003). Existing rows keep their values, and every existing site without a row
  gets one with both off, as it had them: a site that has run with articles left for review is
  not switched to publishing by an upgrade. The downgrade restores the defaults (off) and keeps
  those rows, which hold the earlier defaults anyway.

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

AUTO_FLAGS = ("auto_approval_enabled", "auto_publish_enabled")


def upgrade() -> None:
    op.execute(
        "UPDATE automation_runs SET completed_at = cancelled_at "
        "WHERE status = 'cancelled' AND completed_at IS NULL"
    )
    op.execute(
        "INSERT INTO publishing_settings (account_id, site_id, auto_approval_enabled, "
        "auto_publish_enabled) "
        "SELECT sites.account_id, sites.id, false, false FROM sites "
        "WHERE NOT EXISTS (SELECT 1 FROM publishing_settings p WHERE p.site_id = sites.id)"
    )
    for column in AUTO_FLAGS:
        op.alter_column("publishing_settings", column, server_default="true")


def downgrade() -> None:
    for column in AUTO_FLAGS:
        op.alter_column("publishing_settings", column, server_default="false")
