"""Extract: read every workbook and narrative the message carries (attachments and body)."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from intake.config import Campaign
from intake.journey import Journey, Services
from parsers.check import check_workbook
from parsers.messages import make_issue
from parsers.model import Attachment, NarrativeReport, UnreadableFile
from parsers.narrative import analyse_narrative, extract_text, looks_like_narrative, own_text
from parsers.sniff import kind_of, sniff

BODY_SOURCE = "corps du message"
# Pieces of mail clients' furniture that are never a return: signatures, logos, calendar invites.
_IGNORED_KINDS = {"other"}


def extract(journey: Journey, services: Services) -> None:
    assert journey.mail is not None and journey.campaign is not None and journey.region is not None
    for attachment in journey.mail.attachments:
        _read_attachment(journey, services, attachment)
    body = journey.mail.body_text
    if body.strip() and looks_like_narrative(body):
        own = own_text(body)  # without the quoted thread and the signature
        journey.narratives.append(_with_sha(analyse_narrative(own, BODY_SOURCE), own.encode("utf-8")))


def _read_attachment(journey: Journey, services: Services, attachment: Attachment) -> None:
    assert journey.campaign is not None and journey.region is not None
    name = attachment.filename or "(sans nom)"
    sniffed = sniff(attachment.filename, attachment.content_type, attachment.data)
    kind = kind_of(sniffed)
    if kind == "workbook":
        campaign = journey.campaign
        result = check_workbook(attachment.data, name, year=campaign.year, strict=campaign.strict,
                                expected_region=journey.region.code, geography=campaign.geography)
        named = _campaign_named(services, result.year)
        if named is not None and named.id != campaign.id:
            journey.campaign = named
            result = check_workbook(attachment.data, name, year=named.year, strict=named.strict,
                                    expected_region=journey.region.code, geography=named.geography)
        journey.workbooks.append(result)
    elif kind == "narrative":
        try:
            text = extract_text(attachment.data, sniffed)
        except UnreadableFile as exc:
            journey.message_issues.append(make_issue(
                "unsupported_attachment", file=name, reason=f"document illisible : {exc.reason}"))
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
