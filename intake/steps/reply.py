"""Reply: render the French answer and queue it in the outbox, threaded to the region's message.

Automatic replies to one address are capped per hour (``[limits] replies_per_sender_per_hour``):
a robot that slipped through every rule still cannot start a mail storm.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from intake.journey import Journey, Services
from notifier.outbox import queue_reply
from notifier.replies import draft_reply
from store import queries


def reply(journey: Journey, services: Services) -> None:
    assert journey.mail is not None
    draft = draft_reply(journey, services.settings)
    if draft is None:
        return
    cap = services.settings.limits.replies_per_sender_per_hour
    since = datetime.now(UTC) - timedelta(hours=1)
    if cap and queries.replies_since(journey.session, draft.to[0], since) >= cap:
        journey.reason = (journey.reason + "; " if journey.reason else "") + (
            f"reply withheld: {cap} automatic replies to {draft.to[0]} within the hour")
        services.log.warning("reply to %s withheld: more than %d automatic replies within the hour",
                             draft.to[0], cap)
        return
    journey.reply = draft
    queue_reply(journey.session, settings=services.settings, inbound=journey.inbound, mail=journey.mail,
                draft=draft)
