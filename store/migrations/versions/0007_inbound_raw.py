"""The raw bytes of inbound messages move to a table of their own, ``inbound_raw`` (one row per
message, keyed by its id): recording a message's verdict no longer rewrites its raw bytes (SQLite
rewrites a whole row on UPDATE: twice the message's size in memory and as many bytes written to the
journal, for every message processed). See docs/performance.md.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_raw",
        sa.Column("message_pk", sa.Integer(), sa.ForeignKey("inbound_messages.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
    )
    op.execute("INSERT INTO inbound_raw (message_pk, raw) SELECT id, raw FROM inbound_messages")
    op.drop_column("inbound_messages", "raw")  # SQLite >= 3.35 drops a plain column in place


def downgrade() -> None:
    op.add_column("inbound_messages", sa.Column("raw", sa.LargeBinary(), nullable=True))
    op.execute("UPDATE inbound_messages SET raw = "
               "(SELECT raw FROM inbound_raw WHERE inbound_raw.message_pk = inbound_messages.id)")
    if op.get_bind().dialect.name != "sqlite":  # SQLite would rebuild the table, which others reference
        op.alter_column("inbound_messages", "raw", existing_type=sa.LargeBinary(), nullable=False)
    op.drop_table("inbound_raw")
