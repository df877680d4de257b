"""The state one message carries through the pipeline, and the result a channel gets back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from intake.config.settings import Campaign, RegionConfig
from notifier.replies import ReplyDraft
from parsers.mail.intents import Reading
from parsers.model import Issue, MailMessage, NarrativeReport, WorkbookReturn
from store.models import Dossier, DossierEvent, InboundMessage, Submission
from store.queries.dossiers import current_submissions

# answered: a question answered from the dossier or the campaign, no new version; forwarded: handed to a person.
Outcome = Literal["accepted", "rejected", "answered", "forwarded", "quarantined", "ignored", "duplicate", "failed"]


@dataclass(frozen=True)
class Delivery:
    """A message as a channel hands it over: raw bytes and when it arrived."""

    raw: bytes
    received_at: datetime  # aware; the reception time, never the Date header
    channel: str  # "smtp" | "imap" | "cli" | "web"
    envelope_from: str | None = None
    envelope_to: tuple[str, ...] = ()
    imap_folder: str | None = None  # where the IMAP watcher found it, to move it once processed
    imap_uidvalidity: int | None = None
    imap_uid: int | None = None
    # The region the message speaks for, known from who handed it over (a signed-in web user):
    # stored as the message's region_override, so classify assigns it whoever the From says.
    region: str | None = None


@dataclass(frozen=True)
class IdenticalFile:
    kind: str
    filename: str
    previous: Submission


@dataclass(frozen=True)
class Annotation:
    """``corrections-<region>.xlsx`` of one workbook (``data``), as built from ``workbook``."""

    workbook: WorkbookReturn
    name: str
    data: bytes


@dataclass
class Journey:
    """What the steps learn about one message, in the order they learn it."""

    inbound: InboundMessage
    session: Session
    mail: MailMessage | None = None
    outcome: Outcome | None = None  # set by a step that ends the journey early, or by validate
    reason: str = ""
    region: RegionConfig | None = None
    campaign: Campaign | None = None
    workbooks: list[WorkbookReturn] = field(default_factory=list)
    narratives: list[NarrativeReport] = field(default_factory=list)
    message_issues: list[Issue] = field(default_factory=list)
    identical: list[IdenticalFile] = field(default_factory=list)
    dossier: Dossier | None = None
    submissions: list[Submission] = field(default_factory=list)
    # The dossier's current workbook and narrative once record filed the return (by kind).
    current: dict[str, Submission] | None = None
    late: bool = False
    reading: Reading | None = None  # what the sender's own text asks (steps/converse.py)
    forwarded: bool = False  # handed to a person
    request: DossierEvent | None = None  # the extension request this message made
    reply: ReplyDraft | None = None
    # Annotated workbooks built before the write lock (steps/annotate.py), used by the reply when
    # the workbook and its issues are still the same.
    annotations: list[Annotation] = field(default_factory=list)

    def dossier_files(self, dossier: Dossier) -> dict[str, Submission]:
        """The dossier's current workbook and narrative, by kind: as record left them, else read now."""
        return self.current if self.current is not None else current_submissions(self.session, dossier.id)

    @property
    def finished(self) -> bool:
        """True once a step decided that nothing more is to be done (ignored, duplicate...)."""
        return self.outcome in ("ignored", "duplicate")

    def all_issues(self) -> list[Issue]:
        issues = list(self.message_issues)
        for wb in self.workbooks:
            issues.extend(wb.issues)
        for nar in self.narratives:
            issues.extend(nar.issues)
        return issues


@dataclass(frozen=True)
class Result:
    """The verdict on one message, as `ingest --json` prints it."""

    inbound_id: int
    message_id: str | None
    outcome: Outcome
    region: str | None
    campaign: str | None
    issues: tuple[Issue, ...]
    dossier: str | None
    reply: ReplyDraft | None
    reason: str = ""
    channel: str = ""  # how the message came in (smtp, imap, cli, web), for the metrics

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.inbound_id,
            "message_id": self.message_id,
            "outcome": self.outcome,
            "reason": self.reason or None,
            "region": self.region,
            "campaign": self.campaign,
            "issues": [i.as_dict() for i in self.issues],
            "dossier": self.dossier,
            "reply": None
            if self.reply is None
            else {"to": list(self.reply.to), "cc": list(self.reply.cc), "subject": self.reply.subject,
                  "text": self.reply.text},
        }
