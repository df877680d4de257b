"""Queries and writes used by the pipeline, the notifier and the CLI.

Every function takes a Session first and never commits: the caller owns the transaction.
The "race-safe" inserts rely on a unique key and a SAVEPOINT, so that two processes handling
the same thing at the same time end with one row and a clear answer for the loser, on
SQLite and PostgreSQL alike.

Split by subject: :mod:`store.queries.messages` (inbound messages, identities, message claims,
IMAP lookups), :mod:`store.queries.dossiers` (dossiers, submissions, status, events, campaign
queries) and :mod:`store.queries.outbox` (enqueue, claims, leases, handover, in-doubt items,
backlog). Every public name is re-exported here: callers write ``queries.X``.
"""

from store.queries.dossiers import (
    add_submission,
    campaign_events,
    campaign_submissions,
    dossier_events,
    dossier_status,
    dossier_submissions,
    dossiers_by_region,
    find_identical_submission,
    get_or_create_dossier,
    last_received,
    latest_event,
    latest_submission,
    open_errors,
    record_event,
    refresh_dossier_status,
)
from store.queries.messages import (
    DEDUP_KEY_MAX,
    TEXT_MAX,
    claim_identity,
    claim_message,
    dedup_key_for,
    failed_messages,
    imap_message,
    last_imap_uidvalidity,
    record_imap_failure,
    store_inbound,
    unfinished_messages,
)
from store.queries.outbox import (
    backlog_counts,
    claim_outbox,
    claimable_outbox,
    due_outbox,
    enqueue_outbox,
    finish_outbox,
    in_doubt_outbox,
    last_outbox_created,
    mark_handed_over,
    next_outbox_event,
    outbox_by_message_ids,
    outbox_key_exists,
    outbox_keys,
    release_dead_claims,
    replies_since,
)

__all__ = [
    "DEDUP_KEY_MAX",
    "TEXT_MAX",
    "add_submission",
    "backlog_counts",
    "campaign_events",
    "campaign_submissions",
    "claim_identity",
    "claim_message",
    "claim_outbox",
    "claimable_outbox",
    "dedup_key_for",
    "dossier_events",
    "dossier_status",
    "dossier_submissions",
    "dossiers_by_region",
    "due_outbox",
    "enqueue_outbox",
    "failed_messages",
    "find_identical_submission",
    "finish_outbox",
    "get_or_create_dossier",
    "imap_message",
    "in_doubt_outbox",
    "last_imap_uidvalidity",
    "last_outbox_created",
    "last_received",
    "latest_event",
    "latest_submission",
    "mark_handed_over",
    "next_outbox_event",
    "open_errors",
    "outbox_by_message_ids",
    "outbox_key_exists",
    "outbox_keys",
    "record_event",
    "record_imap_failure",
    "refresh_dossier_status",
    "release_dead_claims",
    "replies_since",
    "store_inbound",
    "unfinished_messages",
]
