"""Inbound messages: (imap_folder, imap_uidvalidity, imap_uid) unique, so that several ``serve``
instances watching one mailbox store each IMAP message once (the loser of the race gets an
IntegrityError and leaves the message to the winner).

Rows stored twice for one UID before this revision (none are expected: one watcher per mailbox)
keep their raw bytes and verdict; only the later copies lose their IMAP coordinates.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ["imap_folder", "imap_uidvalidity", "imap_uid"]


def upgrade() -> None:
    op.execute(
        "UPDATE inbound_messages SET imap_folder = NULL, imap_uidvalidity = NULL, imap_uid = NULL "
        "WHERE imap_uid IS NOT NULL AND id NOT IN ("
        " SELECT keep FROM (SELECT MIN(id) AS keep FROM inbound_messages WHERE imap_uid IS NOT NULL"
        " GROUP BY imap_folder, imap_uidvalidity, imap_uid) AS firsts)"
    )
    op.drop_index("ix_inbound_messages_imap", table_name="inbound_messages")
    op.create_index("ix_inbound_messages_imap", "inbound_messages", COLUMNS, unique=True)


def downgrade() -> None:
    op.drop_index("ix_inbound_messages_imap", table_name="inbound_messages")
    op.create_index("ix_inbound_messages_imap", "inbound_messages", COLUMNS, unique=False)
