"""Delivery: outbox leases and per-recipient key, bounce lookup, IMAP message lookup.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(128), nullable=True))
        batch.add_column(sa.Column("recipients_key", sa.String(320), nullable=True))
    op.create_index("ix_outbox_mail_message_id", "outbox", ["mail_message_id"])
    op.create_index("ix_outbox_recipients_key", "outbox", ["recipients_key", "created_at"])
    op.create_index("ix_inbound_messages_imap", "inbound_messages", ["imap_folder", "imap_uidvalidity", "imap_uid"])


def downgrade() -> None:
    op.drop_index("ix_inbound_messages_imap", table_name="inbound_messages")
    op.drop_index("ix_outbox_recipients_key", table_name="outbox")
    op.drop_index("ix_outbox_mail_message_id", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("recipients_key")
        batch.drop_column("claimed_by")
        batch.drop_column("lease_until")
