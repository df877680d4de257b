"""Region recognition from names, codes and abbreviations."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parsers.reference.catalogue import formed_from, predecessors, regions
from parsers.reference.regions import SUCCESSOR_2016, by_code, find_region_in_text, match_region


def code(region: object) -> str | None:
    return getattr(region, "code", None)


@pytest.mark.parametrize(
    ("text", "geography", "expected"),
    [
        ("Rhone Alpes", None, "82"), ("rhône-alpes", 2014, "82"), ("RHÔNE ALPES", None, "82"),
        ("Ile de France", None, "11"), ("île-de-france", 2016, "11"), ("IDF", None, "11"),
        ("53", None, "53"), ("Région 53", None, "53"), ("région n°53", 2014, "53"),
        ("PACA", None, "93"), ("Provence-Alpes-Cote d'Azur", None, "93"),
        ("NPDC", 2014, "31"), ("Nord Pas de Calais", None, "31"), ("LR", 2014, "91"),
        ("Midi Pyrenees", None, "73"), ("Réunion", None, "04"), ("La Réunion", 2016, "04"),
        ("Centre-Val de Loire", 2016, "24"), ("CVL", None, "24"), ("Centre", 2014, "24"),
        ("BFC", None, "27"), ("Grand-Est", None, "44"), ("grand est", 2016, "44"), ("AURA", None, "84"),
        ("HDF", None, "32"), ("Hauts de France", None, "32"), ("Occitanie", 2016, "76"),
        ("Nouvelle-Aquitaine", None, "75"), ("Normandie", 2016, "28"), ("Corse", None, "94"),
        ("Pays de la Loire", None, "52"), ("Bretagne", 2016, "53"),
    ],
)
def test_match_region(text: str, geography: int | None, expected: str) -> None:
    assert code(match_region(text, geography)) == expected


def test_geography_preferences() -> None:
    # both lists: the 2014 list wins a tie
    region = match_region("Bretagne")
    assert region is not None and region.geography == 2014
    # a 2014 name read for 2016 resolves to the region it merged into
    assert code(match_region("Rhône-Alpes", 2016)) == "84"
    assert code(match_region("Basse-Normandie", 2016)) == "28"
    # a 2016-only region does not exist in 2014
    assert match_region("Grand Est", 2014) is None
    assert match_region("Normandie", 2014) is None
    assert code(match_region("Centre-Val de Loire", 2014)) == "24"  # same region, renamed


@pytest.mark.parametrize("text", ["", "   ", "France", "99", "Région 2013", "Bilan", "Paris", "2013"])
def test_match_region_nothing(text: str) -> None:
    assert match_region(text) is None


@pytest.mark.parametrize(
    ("text", "geography", "expected"),
    [
        ("Région : Bretagne", None, "53"),
        ("Bilan 2013 - Region Rhone Alpes", None, "82"),
        ("Préfecture de la région Bretagne - SGAR", None, "53"),
        ("Bilan 2013 Provence-Alpes-Côte d'Azur", None, "93"),
        ("SGAR Basse-Normandie", 2014, "25"),
        ("Préfecture de la région Alsace-Champagne-Ardenne-Lorraine", None, "44"),
        ("Tableau de bord - région 53", None, "53"),
        ("Région : Ile-de-France (IDF)", None, "11"),
        ("Retour IDF", None, "11"),
        ("Préfecture de région Auvergne-Rhône-Alpes", 2016, "84"),
        ("Région Centre", 2014, "24"),
    ],
)
def test_find_region_in_text(text: str, geography: int | None, expected: str) -> None:
    assert code(find_region_in_text(text, geography)) == expected


@pytest.mark.parametrize(
    ("text", "geography"),
    [
        ("TABLEAU DE SUIVI DES CONVENTIONS INTERMINISTERIELLES", None),
        ("Centres de santé et maisons pluriprofessionnelles", None),  # "Centre" only as a word
        ("Décentré", None),
        ("Alsace-Champagne-Ardenne-Lorraine", 2014),  # not a 2014 region: not "Alsace" either
        ("Bilan 2013", None),
        ("Le projet LR 12", None),  # two-letter abbreviations only when they are the whole text
    ],
)
def test_find_region_in_text_nothing(text: str, geography: int | None) -> None:
    assert find_region_in_text(text, geography) is None


def test_longest_name_wins() -> None:
    assert code(find_region_in_text("Provence-Alpes-Côte d'Azur et Corse")) == "93"
    assert code(find_region_in_text("Bourgogne-Franche-Comté")) == "27"
    assert code(find_region_in_text("Région Franche-Comté", 2014)) == "43"


def test_every_official_name_and_code_is_recognised() -> None:
    for geography in (2014, 2016):
        for region in regions(geography):
            assert match_region(region.name, geography) == region
            assert by_code(region.code, geography) == region
            assert find_region_in_text(f"Préfecture de la région {region.name} - SGAR", geography) == region


@given(st.text(max_size=200), st.sampled_from([None, 2014, 2016, 1999]))
def test_random_text_never_raises(text: str, geography: int | None) -> None:
    for found in (match_region(text, geography), find_region_in_text(text, geography)):
        assert found is None or found.code.isdigit()


def test_every_2014_region_is_in_exactly_one_2016_region() -> None:
    parts = sorted(code for olds in formed_from().values() for code in olds)
    assert parts == sorted(r.code for r in regions(2014)) and set(formed_from()) == {r.code for r in regions(2016)}
    assert predecessors("44", 2016, 2014) == ("42", "21", "41")  # Alsace, Champagne-Ardenne, Lorraine
    assert predecessors("53", 2016, 2014) == ("53",) and predecessors("44", 2016, 2016) == ("44",)
    assert SUCCESSOR_2016["41"] == "44" and "53" not in SUCCESSOR_2016 and len(SUCCESSOR_2016) == 16
