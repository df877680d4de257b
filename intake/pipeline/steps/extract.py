"""Extract: read every workbook and narrative the message carries (attachments and body).

Limits (``[limits]``): ``winmail.dat`` files are first replaced by the files inside them; then only
the first ``max_attachments`` attachments (images aside) are opened, the others are listed
(``too_many_attachments``); an attachment over ``max_attachment_bytes`` is not opened
(``attachment_too_large``); every reader gets the sizes, ratio, rows, columns and time of
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
from parsers.limits import read_limits
from parsers.mail.tnef import is_tnef, tnef_attachments
from parsers.model import Attachment, Issue, NarrativeReport, UnreadableFile
from parsers.sniff import kind_of, sniff
from parsers.workbook.check import check_workbook, human_size, limit_issue

BODY_SOURCE = "corps du message"
# Pieces of mail clients' furniture that are never a return: signatures, logos, calendar invites.
_IGNORED_KINDS = {"other"}
_LISTED_MAX = 20  # names given in a too_many_attachments issue


def extract(journey: Journey, services: Services) -> None:
    assert journey.mail is not None and journey.campaign is not None and journey.region is not None
    limits = services.settings.limits
    attachments = _unwrapped(journey, journey.mail.attachments, limits.max_attachment_bytes)
    opened = 0
    left_out: list[str] = []
    for attachment in attachments:
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
    if body.strip() and looks_like_narrative(body):
        own = own_text(body)  # without the quoted thread and the signature
        journey.narratives.append(_with_sha(analyse_narrative(own, BODY_SOURCE), own.encode("utf-8")))


def _unwrapped(journey: Journey, attachments: tuple[Attachment, ...], max_bytes: int) -> list[Attachment]:
    """The attachments, each ``winmail.dat`` replaced by the files Outlook put inside it."""
    result: list[Attachment] = []
    for attachment in attachments:
        if not is_tnef(attachment) or len(attachment.data) > max_bytes:
            result.append(attachment)
            continue
        try:
            result.extend(tnef_attachments(attachment.data))
        except UnreadableFile as exc:
            journey.message_issues.append(make_issue(
                "unsupported_attachment", file=attachment.filename or "winmail.dat",
                reason=f"fichier Outlook winmail.dat illisible : {reason_words(exc.reason)}"))
    return result


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
