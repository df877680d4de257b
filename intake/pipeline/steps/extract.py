"""Extract: read every workbook and narrative the message carries (attachments and body).

Containers first (:func:`parsers.mail.unwrap.unwrap`): each ``winmail.dat``, ``.zip`` or ``.eml``
is replaced by the files inside it, named "bilan.zip › tableau.xlsx" and read exactly as
attachments. An archive that could not be read (.7z, .rar, nested, encrypted, damaged, over the
limits) is an error, or a warning when the message carries a workbook read elsewhere.

The body: its own text is the narrative when it looks like one; so is the text of a message it
forwards (attached as message/rfc822 or .eml, or inline: :mod:`parsers.mail.forwards`), exactly
as if the sender had written it, unless the service sent it (our own reply forwarded back).

Limits (``[limits]``): only the first ``max_attachments`` attachments (images aside) are opened,
the others are listed (``too_many_attachments``); an attachment over ``max_attachment_bytes`` is
not opened (``attachment_too_large``); all the archives of a message inflate at most
``max_uncompressed_bytes`` together; every reader gets the sizes, ratio, rows, columns and time of
:func:`parsers.limits.read_limits`.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from intake.config.settings import Campaign
from intake.pipeline.journey import Journey
from intake.pipeline.services import Services
from parsers.documents.narrative import analyse_narrative, looks_like_narrative, own_text
from parsers.documents.reader import extract_text
from parsers.issues import make_issue, reason_words
from parsers.limits import archive_limits, read_limits
from parsers.mail.archives import ARCHIVE_CODES
from parsers.mail.forwards import forwarded_bodies
from parsers.mail.unwrap import unwrap
from parsers.model import Attachment, Issue, NarrativeReport, UnreadableFile
from parsers.sniff import kind_of, sniff
from parsers.workbook.check import check_workbook, human_size, limit_issue

BODY_SOURCE = "corps du message"
FORWARDED_SOURCE = "corps du message transféré"
# Pieces of mail clients' furniture that are never a return: signatures, logos, calendar invites.
_IGNORED_KINDS = {"other"}
_LISTED_MAX = 20  # names given in a too_many_attachments issue


def extract(journey: Journey, services: Services) -> None:
    assert journey.mail is not None and journey.campaign is not None and journey.region is not None
    limits = services.settings.limits
    unwrapped = unwrap(journey.mail.attachments, archive_limits(limits), limits.max_attachment_bytes)
    journey.message_issues.extend(unwrapped.issues)
    opened = 0
    left_out: list[str] = []
    for attachment in unwrapped.attachments:
        if attachment.content_type.startswith("image/"):
            continue  # logos and signatures: never opened, never counted
        if opened >= limits.max_attachments:
            left_out.append(attachment.filename or "(sans nom)")
            continue
        opened += 1
        if len(attachment.data) > limits.max_attachment_bytes:
            journey.message_issues.append(_too_large(attachment, limits.max_attachment_bytes))
            continue
        _read_attachment(journey, services, attachment)
    if left_out:
        shown = ", ".join(f"« {n} »" for n in left_out[:_LISTED_MAX])
        if len(left_out) > _LISTED_MAX:
            shown += f" et {len(left_out) - _LISTED_MAX} autres"
        journey.message_issues.append(make_issue(
            "too_many_attachments", count=opened + len(left_out), limit=limits.max_attachments, files=shown))
    body = journey.mail.body_text
    ours = {a.lower() for a in services.settings.own_addresses}
    forwarded = [*forwarded_bodies(body, journey.mail.subject), *unwrapped.texts]
    texts = [(BODY_SOURCE, body), *((FORWARDED_SOURCE, f.text) for f in forwarded if f.sender not in ours)]
    for source, text in texts:
        if text.strip() and looks_like_narrative(text):
            own = own_text(text)  # without the quoted thread and the signature
            journey.narratives.append(_with_sha(analyse_narrative(own, source), own.encode("utf-8")))
    if journey.workbooks:  # the return was read: an archive beside it is no reason to reject it
        journey.message_issues[:] = [replace(i, severity="warning") if i.code in ARCHIVE_CODES else i
                                     for i in journey.message_issues]


def _too_large(attachment: Attachment, limit: int) -> Issue:
    """An error for a file we would have read; a warning for anything else."""
    sniffed = sniff(attachment.filename, attachment.content_type, attachment.data[:65536])
    kind = kind_of(sniffed)
    return make_issue("attachment_too_large", file=attachment.filename or "(sans nom)",
                      severity="error" if kind == "workbook" else "warning",
                      size=human_size(len(attachment.data)), limit=human_size(limit))


def _read_attachment(journey: Journey, services: Services, attachment: Attachment) -> None:
    assert journey.campaign is not None and journey.region is not None
    name = attachment.filename or "(sans nom)"
    sniffed = sniff(attachment.filename, attachment.content_type, attachment.data)
    kind = kind_of(sniffed)
    limits = read_limits(services.settings.limits)
    if kind == "workbook":
        campaign = journey.campaign
        result = check_workbook(attachment.data, name, year=campaign.year, strict=campaign.strict,
                                expected_region=journey.region.code, geography=campaign.geography, limits=limits)
        named = _campaign_named(services, result.year)
        if named is not None and named.id != campaign.id:
            journey.campaign = named
            result = check_workbook(attachment.data, name, year=named.year, strict=named.strict,
                                    expected_region=journey.region.code, geography=named.geography,
                                    limits=limits)
        journey.workbooks.append(result)
    elif kind == "narrative":
        try:
            text = extract_text(attachment.data, sniffed, limits=limits)
        except UnreadableFile as exc:
            journey.message_issues.append(limit_issue(name, exc.reason, exc.detail, limits) or make_issue(
                "unsupported_attachment", file=name, reason=f"document illisible : {reason_words(exc.reason)}"))
            return
        journey.narratives.append(_with_sha(analyse_narrative(text, name), attachment.data))
    elif not attachment.content_type.startswith("image/") and (sniffed not in _IGNORED_KINDS or attachment.filename):
        journey.message_issues.append(
            make_issue("unsupported_attachment", file=name, reason="format non pris en charge"))


def _campaign_named(services: Services, year: int | None) -> Campaign | None:
    if year is None:
        return None
    return next((c for c in services.settings.campaigns if c.year == year), None)


def _with_sha(report: NarrativeReport, data: bytes) -> NarrativeReport:
    return replace(report, sha256=hashlib.sha256(data).hexdigest())
