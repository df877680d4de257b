"""Where an issue is, as the clerk finds it on their sheet: the line, the cell, the code only in brackets."""

from __future__ import annotations

from notifier.rendering import AUTOMATED_WORDS, issue_location
from parsers.issues import make_issue
from parsers.mail import automated


def test_an_issue_is_located_by_its_line_with_the_code_in_brackets() -> None:
    issue = make_issue("out_of_range", indicator="I07", sheet="Annexe 2", cell="G14", value=125,
                       label="Part des postes affectés à la scolarisation", unit="percent", bounds="entre 0 et 100 %")
    assert issue.message.startswith("Ligne 14 « Part des postes affectés à la scolarisation » (I07) : la valeur 125")
    assert "écrivez 25 pour 25 %" in issue.message
    assert issue_location(issue) == "feuille « Annexe 2 », ligne 14 (I07), cellule G14"
    assert issue_location(issue, label=True) == (
        "feuille « Annexe 2 », ligne 14 « Part des postes affectés à la scolarisation des moins de 3… » (I07), "
        "cellule G14")
    assert issue_location(issue.as_dict(), compact=True) == "G14 (I07)"
    missing = {"sheet": "Annexe 2", "cell": None, "indicator": "I08"}  # no line: named by its label
    assert issue_location(missing) == (
        "feuille « Annexe 2 », « Part des postes créés dans les écoles des ZUS/QPV » (I08)")
    assert issue_location({"sheet": "Annexe 2", "cell": "B2", "indicator": None}) == "feuille « Annexe 2 », cellule B2"


def test_every_automated_reason_has_its_french_words() -> None:
    """Each rule of parsers.mail.automated returns its own name as the reason."""
    assert {rule.__name__ for rule in automated.RULES} == set(AUTOMATED_WORDS)
