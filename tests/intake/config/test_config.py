"""Configuration: built-in defaults, the documented example, and refusals that name key and line."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from intake.config.clock import local_date, utcnow
from intake.config.loader import ConfigError, load_settings
from tests.support.paths import ROOT
from tests.support.settings import campaign, make_settings, write_config

EXAMPLE_MAILBOX = "conventions@ville.example.org"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf.toml"
    path.write_text(text, encoding="utf-8")
    return path


# The refusals name the line: these tests write their TOML by hand, from this text.
BASE = """
[mailbox]
address = "conventions@ville.example.org"

[[campaigns]]
id = "bilan-2013"
year = 2013
opens = 2014-03-26
deadline = 2014-05-15
"""


def test_defaults_start_without_a_file() -> None:
    settings = load_settings(None)
    assert settings.mailbox_address == "conventions@ville.example.org"
    [demo] = settings.campaigns  # a demonstration campaign, dated from today: nobody trying it is years late
    today = local_date(utcnow())
    assert (demo.id, demo.year) == ("demo-bilan-2013", 2013)
    assert (demo.opens, demo.deadline) == (today - timedelta(days=30), today + timedelta(days=30))
    assert settings.campaign_for(utcnow()) == demo
    assert len(settings.regions) == 27
    assert settings.smtp is None
    assert settings.receiver.port == 2525


def test_example_file_is_valid_and_documented_keys_are_read() -> None:
    settings = load_settings(ROOT / "config.example.toml")
    campaign = settings.campaign("bilan-2013")
    assert (campaign.year, campaign.opens, campaign.deadline, campaign.strict) == (
        2013, date(2014, 3, 26), date(2014, 5, 15), False)
    bretagne = settings.region("53")
    assert bretagne is not None
    assert bretagne.senders == ("sgar@bretagne.example.org", "@bretagne.example.org")
    assert bretagne.contacts == ("sgar@bretagne.example.org",)
    assert settings.coordinators[0].email == "coordination@ville.example.org"


def test_sender_matching_by_address_then_domain(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, base="built-in", mailbox=EXAMPLE_MAILBOX, campaigns=[campaign()], regions=[
        {"code": "53", "senders": ["sgar@bretagne.example.org", "@bretagne.example.org"]},
        {"code": "52", "senders": ["chef@pdl.example.org"]}])

    def region_of(sender: str | None) -> str | None:
        region = settings.region_for_sender(sender)
        return region.code if region is not None else None

    assert region_of("SGAR@Bretagne.Example.org") == "53"
    assert region_of("anyone@bretagne.example.org") == "53"
    assert region_of("chef@pdl.example.org") == "52"
    assert region_of("other@pdl.example.org") is None
    assert region_of("x@sub.bretagne.example.org") is None
    assert region_of(None) is None
    # the name defaults to the reference name; contacts default to the full addresses among senders
    region = settings.region("53")
    assert region is not None and region.name == "Bretagne"
    assert region.contacts == ("sgar@bretagne.example.org",)


@pytest.mark.parametrize(
    ("extra", "line", "words"),
    [
        ('[[regions]]\ncode = "99"\n', 12, "regions[0].code : code de région INSEE inconnu « 99 »"),
        ('[[regions]]\ncode = "53"\nsenders = ["a@x.example.org"]\n[[regions]]\ncode = "52"\n'
         'senders = ["a@x.example.org"]\n', 16, "déjà attribué à la région 53"),
        ('[[regions]]\ncode = "53"\nsenders = ["not an address"]\n', 13, "ni une adresse ni un domaine"),
        ('[receiver]\nport = 99999\n', 12, "receiver.port"),
        ('[mailboxx]\naddress = "x@y.org"\n', 11, "section inconnue"),
    ],
)
def test_wrong_config_is_refused_naming_key_and_line(tmp_path: Path, extra: str, line: int, words: str) -> None:
    path = write(tmp_path, BASE + "\n" + extra)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert f"{path}, ligne {line}" in message
    assert words in message


def test_bad_date_is_refused_with_its_line(tmp_path: Path) -> None:
    text = BASE.replace("deadline = 2014-05-15", 'deadline = "2014-02-30"')
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert f"{path}, ligne 9 : campaigns[0].deadline : date invalide « 2014-02-30 »" in str(err.value)
    assert "précède" not in str(err.value)  # no follow-on error from the invalid date


def test_a_date_relative_to_today(tmp_path: Path) -> None:
    text = BASE.replace("opens = 2014-03-26", 'opens = "today"').replace("deadline = 2014-05-15",
                                                                       'deadline = "today + 3"')
    settings = load_settings(write(tmp_path, text))
    today = local_date(utcnow())
    assert (settings.campaigns[0].opens, settings.campaigns[0].deadline) == (today, today + timedelta(days=3))
    with pytest.raises(ConfigError, match="date invalide « tomorrow »"):
        load_settings(write(tmp_path, BASE.replace("deadline = 2014-05-15", 'deadline = "tomorrow"')))


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "\n[[regions]\ncode = 53\n")
    with pytest.raises(ConfigError, match="line 11"):
        load_settings(path)


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("year = 2013", "year = 2013\nstrikt = true"))
    with pytest.raises(ConfigError, match=r"ligne 8 : campaigns\[0\]\.strikt : clé inconnue"):
        load_settings(path)


def test_campaign_for_reception_time_and_named_year(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, base="built-in", mailbox=EXAMPLE_MAILBOX, campaigns=[
        campaign(), campaign(id="bilan-2014", year=2014, opens=date(2015, 3, 1), deadline=date(2015, 5, 15))])
    assert settings.campaign_for(datetime(2014, 4, 1, tzinfo=UTC)).id == "bilan-2013"
    assert settings.campaign_for(datetime(2015, 4, 1, tzinfo=UTC)).id == "bilan-2014"
    assert settings.campaign_for(datetime(2015, 4, 1, tzinfo=UTC), year=2013).id == "bilan-2013"
    assert settings.campaign_for(datetime(2010, 1, 1, tzinfo=UTC)).id == "bilan-2013"
    # a campaign on 2015 or later is collected from the 18 regions of 2016
    assert len(settings.campaign_regions(settings.campaign("bilan-2014"))) == 27


def test_the_previous_campaign_is_the_one_on_the_year_before(tmp_path: Path) -> None:
    later = campaign(id="bilan-2015", year=2015, opens=date(2016, 3, 1), deadline=date(2016, 5, 15))
    settings = make_settings(tmp_path, base="built-in", mailbox=EXAMPLE_MAILBOX, campaigns=[
        later, campaign(), campaign(id="bilan-2014", year=2014, opens=date(2015, 3, 1), deadline=date(2015, 5, 15))])
    previous = settings.previous_campaign(settings.campaign("bilan-2015"))
    assert previous is not None and previous.id == "bilan-2014"
    first = settings.previous_campaign(settings.campaign("bilan-2013"))
    assert first is None


def test_smtp_password_from_environment(tmp_path: Path) -> None:
    path = write_config(tmp_path, base="built-in", mailbox=EXAMPLE_MAILBOX, campaigns=[campaign()],
                        smtp={"host": "relay.example.org", "password_env": "PW"})
    smtp = load_settings(path, environ={"PW": "s3cret"}).smtp
    assert smtp is not None and smtp.password == "s3cret"
    with pytest.raises(ConfigError, match="PW est vide"):
        load_settings(path, environ={})
