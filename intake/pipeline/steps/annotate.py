"""Annotate: build ``corrections-<region>.xlsx`` for each workbook with issues, before the lock.

The annotated workbook (:mod:`notifier.corrections`: our template holding what was read, each
faulty cell coloured and commented) costs tens of milliseconds of openpyxl, more than the rest of
the reply; it depends only on the workbook as read, the region and the campaign, all known before
the write lock. Built here, it is kept on the journey, and the reply step attaches it when the
workbook and its issues are still the same once the verdict is reached (message-level rules may
add warnings: then it is built again, under the lock). A message that turns out to be a duplicate
under the lock wastes the work, never the guarantee.
"""

from __future__ import annotations

from intake.pipeline.journey import Annotation, Journey
from intake.pipeline.services import Services
from notifier.corrections import annotated, build_corrections
from parsers.model import WorkbookReturn


def annotate(journey: Journey, services: Services) -> None:
    journey.annotations = build_annotations(journey, services, journey.workbooks)


def build_annotations(journey: Journey, services: Services, workbooks: list[WorkbookReturn]) -> list[Annotation]:
    """One annotation per workbook with issues; a workbook that cannot be annotated (a bug) is
    logged and left out: the reply still goes."""
    region, campaign = journey.region, journey.campaign
    if region is None or campaign is None:
        return []
    built: list[Annotation] = []
    for workbook, name in annotated(workbooks, region.name):
        prebuilt = next((a for a in journey.annotations
                         if a.workbook.entries is workbook.entries and a.workbook.issues == workbook.issues), None)
        if prebuilt is not None:
            built.append(Annotation(workbook, name, prebuilt.data))
            continue
        try:
            data = build_corrections(workbook, region_code=region.code, region_name=region.name,
                                     campaign_id=campaign.id, year=campaign.year)
        except Exception:
            services.log.exception("annotated workbook of %s not built", workbook.file)
            continue
        built.append(Annotation(workbook, name, data))
    return built
