"""A message whose processing raised: recorded ``failed`` with its error, and the admins told.

The message keeps its raw bytes and waits for ``conventions-intake reprocess``; nothing was sent to
its sender (the failed transaction queued nothing).
"""

from __future__ import annotations

import traceback

from intake.config.clock import utcnow
from intake.pipeline.journey import Result
from intake.pipeline.services import Services
from notifier.alerts import queue_failed_alert
from parsers.text import one_line
from store.db import store_unavailable
from store.models import InboundMessage


def record_failure(services: Services, inbound_id: int, exc: Exception) -> Result:
    """Mark the message ``failed`` with its traceback (its own transaction) and say why.

    A store that cannot be used (server restarting, connection dropped, disk full) is not the
    message's fault: the exception is raised again, the message stays ``received`` and the worker
    tries it again once the store answers (never ``failed`` for a database hiccup)."""
    if store_unavailable(exc):
        raise exc
    services.log.exception("message #%d failed: %s", inbound_id, one_line(str(exc)))
    detail = "".join(traceback.format_exception(exc))[-8000:]
    with services.sessions.begin() as session:
        inbound = session.get(InboundMessage, inbound_id)
        if inbound is not None:
            inbound.outcome = "failed"
            inbound.outcome_reason = one_line(f"{type(exc).__name__}: {exc}")
            inbound.error = detail
            inbound.attempts += 1
            inbound.processed_at = utcnow()
        message_id = inbound.message_id if inbound else None
    return Result(inbound_id, message_id, "failed", None, None, (), None, None,
                  reason=f"{type(exc).__name__}: {one_line(str(exc))}")


def alert_failed(services: Services, result: Result) -> None:
    """Tell the admins by mail that a message could not be processed, then hand the mail over.

    Never raises: an alert that cannot be queued is logged, the failure itself is already stored.
    """
    if result.outcome != "failed":
        return
    try:
        with services.sessions.begin() as session:
            queue_failed_alert(session, services.settings, result.inbound_id, result.reason)
        if services.after_commit is not None:
            services.after_commit()
    except Exception:
        services.log.exception("alert about failed message #%d could not be queued", result.inbound_id)
