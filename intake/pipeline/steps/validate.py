"""Validate: rules on the message as a whole, the comparison with last year, then the verdict.
Workbook rules ran in extract."""

from __future__ import annotations

from dataclasses import replace

from intake.pipeline.journey import Journey
from intake.pipeline.services import Services
from notifier.last_year import last_year
from parsers.issues import make_issue
from parsers.mail.archives import ARCHIVE_CODES


def validate(journey: Journey, services: Services) -> None:
    unread_archive = any(i.code in ARCHIVE_CODES for i in journey.message_issues)  # its issue says why
    if not journey.workbooks and not journey.narratives and not unread_archive:
        journey.message_issues.append(make_issue("no_return_found"))
    _compare_with_last_year(journey, services)
    errors = [i for i in journey.all_issues() if i.severity == "error"]
    journey.outcome = "rejected" if errors else "accepted"


def _compare_with_last_year(journey: Journey, services: Services) -> None:
    """Each workbook against the region's accepted return of the previous campaign, the findings added
    to the workbook's own issues (docs/value-rules.md, « D'une année sur l'autre »): warnings, but for
    the template pre-filled with last year's observations sent back with no result."""
    campaign, region = journey.campaign, journey.region
    if not journey.workbooks or campaign is None or region is None:
        return
    previous = last_year(journey.session, services.settings, campaign, region.code)
    if previous is None or not previous.returns:
        return
    for n, workbook in enumerate(journey.workbooks):
        warnings = previous.compare(workbook, campaign.year)
        journey.workbooks[n] = replace(workbook, issues=(*workbook.issues, *warnings))
