"""A keyword's search volume is a BIGINT: tools report global volumes of head terms in the
billions, near int4's 2,147,483,647.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 17:02:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("keywords", "volume", type_=sa.BigInteger(), existing_nullable=True)


def downgrade() -> None:
    # Volumes above int4 are capped rather than failing the downgrade.
    op.alter_column(
        "keywords",
        "volume",
        type_=sa.Integer(),
        existing_nullable=True,
        postgresql_using="LEAST(volume, 2147483647)::integer",
    )
