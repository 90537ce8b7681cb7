"""Release 1.3.0: documents.language, detected from the OCR text. FAILS HALFWAY.

The column and its index are built outside the migration transaction
(CREATE INDEX CONCURRENTLY needs autocommit), so they stay committed; the
backfill then calls a function that does not exist, the migration fails, and
alembic_version stays at 0002 with the database partly changed.

Revision ID: 0004
Revises: 0002
"""

from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("ALTER TABLE documents ADD COLUMN language VARCHAR(8)")
        op.execute("CREATE INDEX CONCURRENTLY ix_documents_language ON documents (language)")
    op.execute("UPDATE documents SET language = ablage_detect_language(ocr_text) WHERE ocr_text IS NOT NULL")
    op.execute("ALTER TABLE documents ALTER COLUMN language SET NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_documents_language")
    op.execute("ALTER TABLE documents DROP COLUMN IF EXISTS language")
