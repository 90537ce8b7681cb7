"""Release 1.4.0: documents.reviewed_at, an additive column (nullable, no default, no backfill).

Release 1.4.0 sits two migrations above 1.0.0, so a rollback from it to 1.0.0 downgrades across
two releases (tests/integration/test_rollback_release.py).

Revision ID: 0005
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("documents", "reviewed_at")
