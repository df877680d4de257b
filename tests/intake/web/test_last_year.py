"""The web page's template of a campaign in which the region has sent nothing yet starts from its
observations of the previous campaign; the figures stay blank."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from parsers.workbook.check import check_workbook
from tests.factories.emails import XLSX, build_email
from tests.factories.workbooks import GOOD_OBSERVATIONS, good_workbook
from tests.support.pipeline import ingest
from tests.support.settings import campaign, make_services
from tests.support.web import add_user, client, sign_in, web_section

REGION = "sgar@bretagne.pref.gouv.fr"
BILAN_2014 = campaign(id="bilan-2014", year=2014, opens=date(2015, 3, 20), deadline=date(2015, 5, 15))


def test_the_template_of_the_next_campaign_carries_last_years_observations(tmp_path: Path, db_url: str) -> None:
    services = make_services(tmp_path, db_url, web=web_section(), campaigns=[campaign(), BILAN_2014])
    add_user(services, REGION, "region", "53")
    sent = ingest(services, build_email(attachments=[("bilan.xlsx", good_workbook(), XLSX)]),
                  datetime(2014, 5, 2, 9, 30, tzinfo=UTC))
    assert sent.outcome == "accepted" and sent.campaign == "bilan-2013"
    c = client(services)
    sign_in(c, REGION)

    response = c.get("/region/53/modele.xlsx?campagne=bilan-2014")
    assert response.status_code == 200
    read = check_workbook(response.content, "modele.xlsx", year=2014)
    assert {k: e.observation for k, e in read.entries.items() if e.observation} == GOOD_OBSERVATIONS
    assert all(e.value is None for e in read.entries.values())

    own = check_workbook(c.get("/region/53/modele.xlsx?campagne=bilan-2013").content, "modele.xlsx", year=2013)
    assert own.entries["I09"].value == 4  # in its own campaign, the region's latest return as before
