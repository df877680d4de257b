"""Queries and writes used by the pipeline, the notifier and the entry points, by subject.

Every function takes a Session first and never commits: the caller owns the transaction.
The "race-safe" inserts rely on a unique key and a SAVEPOINT, so that two processes handling
the same thing at the same time end with one row and a clear answer for the loser, on
SQLite and PostgreSQL alike.

:mod:`store.queries.messages` (inbound messages, identities, message claims, IMAP lookups),
:mod:`store.queries.dossiers` (dossiers, submissions, status, events, campaign queries) and
:mod:`store.queries.outbox` (enqueue, claims, leases, handover, in-doubt items, backlog).
"""
