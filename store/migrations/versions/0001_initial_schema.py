"""Initial schema: inbound messages, identities, dossiers, submissions, outbox, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Written by hand from store/models.py (kept self-contained: plain SQLAlchemy types only;
``UTCDateTime`` is ``DateTime(timezone=True)`` in the database). The test suite checks that
this schema and the models match on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        _timestamp("received_at"),
        sa.Column("envelope_from", sa.String(length=998), nullable=True),
        sa.Column("envelope_to", sa.JSON(), nullable=False),
        sa.Column("from_addr", sa.String(length=998), nullable=True),
        sa.Column("subject", sa.String(length=998), nullable=False),
        sa.Column("outcome", sa.String(length=16), server_default="received", nullable=False),
        sa.Column("outcome_reason", sa.Text(), nullable=True),
        sa.Column("region_code", sa.String(length=32), nullable=True),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _timestamp("processed_at", nullable=True),
        _timestamp("created_at"),
        sa.Column("verdict", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("imap_folder", sa.String(length=255), nullable=True),
        sa.Column("imap_uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("imap_uid", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inbound_messages"),
    )
    op.create_index("ix_inbound_messages_dedup_key", "inbound_messages", ["dedup_key"])
    op.create_index("ix_inbound_messages_message_id", "inbound_messages", ["message_id"])
    op.create_index(
        "ix_inbound_messages_outcome_received_at", "inbound_messages", ["outcome", "received_at"]
    )

    op.create_table(
        "message_identities",
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("message_pk", sa.Integer(), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["message_pk"],
            ["inbound_messages.id"],
            name="fk_message_identities_message_pk_inbound_messages",
        ),
        sa.PrimaryKeyConstraint("dedup_key", name="pk_message_identities"),
    )
    op.create_index("ix_message_identities_message_pk", "message_identities", ["message_pk"])

    op.create_table(
        "dossiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("region_code", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="missing", nullable=False),
        sa.Column("exempt", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("deadline_override", sa.Date(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_dossiers"),
        sa.UniqueConstraint("campaign_id", "region_code", name="uq_dossiers_campaign_id_region_code"),
    )

    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dossier_id", sa.Integer(), nullable=False),
        sa.Column("message_pk", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        _timestamp("received_at"),
        sa.Column("late", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("superseded_by_id", sa.Integer(), nullable=True),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("observations", sa.JSON(), nullable=False),
        sa.Column("issues", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["dossier_id"], ["dossiers.id"], name="fk_submissions_dossier_id_dossiers"
        ),
        sa.ForeignKeyConstraint(
            ["message_pk"], ["inbound_messages.id"], name="fk_submissions_message_pk_inbound_messages"
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by_id"], ["submissions.id"], name="fk_submissions_superseded_by_id_submissions"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_submissions"),
        sa.UniqueConstraint(
            "dossier_id", "kind", "version", name="uq_submissions_dossier_id_kind_version"
        ),
    )
    op.create_index("ix_submissions_message_pk", "submissions", ["message_pk"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("message_pk", sa.Integer(), nullable=True),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("cc", sa.JSON(), nullable=False),
        sa.Column("subject", sa.String(length=998), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("mail_message_id", sa.String(length=998), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _timestamp("next_attempt_at", nullable=True),
        _timestamp("sent_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["message_pk"], ["inbound_messages.id"], name="fk_outbox_message_pk_inbound_messages"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("key", name="uq_outbox_key"),
    )
    op.create_index("ix_outbox_message_pk", "outbox", ["message_pk"])
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])

    op.create_table(
        "dossier_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dossier_id", sa.Integer(), nullable=False),
        _timestamp("at"),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dossier_id"], ["dossiers.id"], name="fk_dossier_events_dossier_id_dossiers"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dossier_events"),
    )
    op.create_index("ix_dossier_events_dossier_id", "dossier_events", ["dossier_id"])


def downgrade() -> None:
    # Indexes go with their tables; drop children before parents.
    op.drop_table("dossier_events")
    op.drop_table("outbox")
    op.drop_table("submissions")
    op.drop_table("dossiers")
    op.drop_table("message_identities")
    op.drop_table("inbound_messages")
