"""Last year's return of a region, from the store: what a new return is compared with
(parsers/workbook/history.py) and the starting point of the next campaign's template.

"Last year" is the previous campaign in the settings (:meth:`Settings.previous_campaign`, by year
under review); the region's return there is its last accepted workbook. Across the 2016 merger a
region continues its predecessors (``formed_from`` of the reference data): each of them that
returned is one :class:`PreviousReturn`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from intake.config.settings import Campaign, Settings
from parsers.model import Issue, WorkbookReturn
from parsers.reference import catalogue
from parsers.workbook.history import PreviousReturn, carried_observations, compare
from store.queries.dossiers import last_accepted_workbooks


@dataclass(frozen=True)
class LastYear:
    campaign: Campaign  # the previous campaign
    returns: tuple[PreviousReturn, ...]  # the regions continued that have an accepted return there
    expected: int  # how many regions are continued (3 for Grand Est, 1 for Bretagne)

    def compare(self, workbook: WorkbookReturn, year: int) -> list[Issue]:
        """The year-over-year warnings on ``workbook`` (never an error)."""
        return compare(workbook, self.returns, expected=self.expected, year=year)

    def observations(self) -> dict[str, str]:
        return carried_observations(self.returns, merged=self.expected > 1)


def last_year(session: Session, settings: Settings, campaign: Campaign, region_code: str) -> LastYear | None:
    """The region's return(s) of the campaign before ``campaign``; None when there is no such campaign."""
    previous = settings.previous_campaign(campaign)
    if previous is None:
        return None
    codes = catalogue.predecessors(region_code, campaign.geography, previous.geography)
    found = last_accepted_workbooks(session, previous.id, codes)
    returns = tuple(
        PreviousReturn(region=catalogue.region_name(code, previous.geography) or code, year=previous.year,
                       values=dict(found[code].values or {}),
                       observations=dict(found[code].observations or {})
                       if isinstance(found[code].observations, dict) else {})
        for code in codes if code in found)
    return LastYear(previous, returns, len(codes))


def starting_observations(session: Session, settings: Settings, campaign: Campaign, region_code: str) -> dict[str, str]:
    """Last year's observations, to pre-fill the template of a region that has sent no workbook yet in
    ``campaign`` (the figures stay blank): empty when there is no previous return."""
    found = last_year(session, settings, campaign, region_code)
    return found.observations() if found is not None else {}
