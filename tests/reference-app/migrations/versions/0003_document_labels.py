"""Release 1.2.0: a document_labels table. Succeeds and is reversible.

(The release's application code expects the table under another name, so it
fails its health checks: see releases.json.)

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "document_labels",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "document_id",
            sa.String(36),
            sa.ForeignKey("documents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("label", sa.String(64), nullable=False),
        sa.UniqueConstraint("document_id", "label", name="uq_document_labels_document_label"),
    )


def downgrade() -> None:
    op.drop_table("document_labels")
