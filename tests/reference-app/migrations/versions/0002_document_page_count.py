"""Release 1.1.0: documents.page_count, backfilled from the OCR text of existing rows.

The worker separates pages with a form feed, so a processed document has
1 + (number of form feeds) pages; documents not yet processed stay NULL.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("page_count", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE documents SET page_count = "
        "1 + length(ocr_text) - length(replace(ocr_text, chr(12), '')) "
        "WHERE ocr_text IS NOT NULL"
    )
    op.create_check_constraint("ck_documents_page_count_positive", "documents", "page_count > 0")


def downgrade() -> None:
    op.drop_constraint("ck_documents_page_count_positive", "documents", type_="check")
    op.drop_column("documents", "page_count")
