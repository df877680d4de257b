"""Validate: rules on the message as a whole, then the verdict. Workbook rules ran in extract."""

from __future__ import annotations

from intake.pipeline.journey import Journey
from intake.pipeline.services import Services
from parsers.issues import make_issue
from parsers.mail.archives import ARCHIVE_CODES


def validate(journey: Journey, services: Services) -> None:
    unread_archive = any(i.code in ARCHIVE_CODES for i in journey.message_issues)  # its issue says why
    if not journey.workbooks and not journey.narratives and not unread_archive:
        journey.message_issues.append(make_issue("no_return_found"))
    errors = [i for i in journey.all_issues() if i.severity == "error"]
    journey.outcome = "rejected" if errors else "accepted"
