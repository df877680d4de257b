"""Reply: render the French answer and queue it in the outbox, threaded to the region's message."""

from __future__ import annotations

from intake.journey import Journey, Services
from notifier.outbox import queue_reply
from notifier.replies import draft_reply


def reply(journey: Journey, services: Services) -> None:
    assert journey.mail is not None
    draft = draft_reply(journey, services.settings)
    if draft is None:
        return
    journey.reply = draft
    queue_reply(journey.session, settings=services.settings, inbound=journey.inbound, mail=journey.mail,
                draft=draft)
