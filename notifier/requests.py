"""The coordinators' answer to a region's request for more time, drafted from plain facts.

The answer goes in the region's thread (In-Reply-To / References of its message, set by the
caller through :func:`notifier.outbox.build_mail`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from notifier.rendering import environment, fr_date, fr_datetime
from notifier.replies import ReplyDraft


@dataclass(frozen=True)
class DecisionFacts:
    region: str  # name
    year: int
    granted: bool
    until: date | None  # the new deadline when granted
    deadline: date  # the region's deadline after the decision
    asked_at: datetime  # when the region asked
    subject: str  # of the region's message
    to: tuple[str, ...]
    cc: tuple[str, ...]
    mailbox: str
    note: str = ""  # a word from the coordinator, shown as is


def draft_decision(facts: DecisionFacts) -> ReplyDraft:
    verdict = f"délai accordé jusqu'au {fr_date(facts.until)}" if facts.granted and facts.until else "délai refusé"
    subject = f"Bilan {facts.year} – {facts.region} : {verdict}"
    context = {
        "subject_line": subject, "region": facts.region, "year": facts.year, "granted": facts.granted,
        "until": fr_date(facts.until) if facts.until else None, "deadline": fr_date(facts.deadline),
        "asked": fr_datetime(facts.asked_at), "subject": facts.subject, "note": facts.note,
        "mailbox": facts.mailbox,
    }
    env = environment()
    return ReplyDraft(to=facts.to, cc=facts.cc, subject=subject,
                      text=env.get_template("decision.txt.j2").render(context),
                      html=env.get_template("decision.html.j2").render(context))
