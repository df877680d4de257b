"""The intent tables measured on the corpus: each automatic answer right at least 95 % of the time,
and what is not recognised handed to a person, never answered by a guess."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pytest

from parsers.documents.narrative import own_text
from parsers.mail.automated import automated_reason
from parsers.mail.intents import INTENTS, date_asked, read_message
from parsers.mail.mime import parse_message
from tests.factories.emails import build_email
from tests.factories.phrasings import ATTACHMENT, CORPUS, FORWARD, HELD_OUT, OUT_OF_OFFICE

TODAY = date(2014, 5, 13)
MIN_PRECISION = 0.95
DOC = Path(__file__).resolve().parents[3] / "docs" / "conversation.md"


def decision(text: str) -> set[str] | str:
    """What the service does with a message of this text and no attachment."""
    reading = read_message(own_text(text), TODAY)
    if reading.announces_attachment or not reading.has_content:
        return ATTACHMENT
    if reading.confident and reading.intents != ("extension",):
        return set(reading.intents)
    if reading.confident:
        return {"extension"}
    return FORWARD


def measure(corpus: Sequence[tuple[str, set[str] | str]] = CORPUS) -> dict[str, tuple[int, int, int]]:
    """For each intent, and for « forward » and « attachment »: (true positives, predicted, expected)."""
    names = [i.name for i in INTENTS] + [FORWARD, ATTACHMENT]
    counts = {n: [0, 0, 0] for n in names}
    for text, expected in corpus:
        got = decision(text)
        exp_set = expected if isinstance(expected, set) else {expected}
        got_set = got if isinstance(got, set) else {got}
        for name in names:
            counts[name][0] += name in got_set and name in exp_set
            counts[name][1] += name in got_set
            counts[name][2] += name in exp_set
    return {n: (c[0], c[1], c[2]) for n, c in counts.items()}


def test_the_corpus_has_at_least_150_phrasings() -> None:
    assert len(CORPUS) >= 150


@pytest.mark.parametrize("intent", [i.name for i in INTENTS if i.answer != "person"])
def test_each_automatic_answer_is_right_at_least_95_percent_of_the_time(intent: str) -> None:
    tp, predicted, expected = measure()[intent]
    assert expected >= 8, f"too few {intent} phrasings to measure"
    assert predicted and tp / predicted >= MIN_PRECISION, (intent, tp, predicted)


def test_what_is_not_recognised_is_forwarded_not_answered() -> None:
    misanswered = [text for text, expected in CORPUS
                   if expected == FORWARD and isinstance(decision(text), set)]
    assert len(misanswered) <= 0.05 * sum(1 for _, e in CORPUS if e == FORWARD), misanswered


def test_requests_for_more_time_and_forgotten_attachments_are_recognised() -> None:
    for name in ("extension", ATTACHMENT):
        tp, predicted, expected = measure()[name]
        assert tp / predicted >= MIN_PRECISION and tp / expected >= 0.9, (name, tp, predicted, expected)


def test_the_example_of_the_issue() -> None:
    reading = read_message("Bonjour,\n\npouvez-vous me confirmer la bonne réception de notre bilan envoyé la "
                           "semaine dernière ? Et la date limite est-elle toujours le 15 mai ?\n\nCordialement,\nM.",
                           TODAY)
    assert reading.intents == ("receipt", "deadline") and reading.confident
    assert [e.cue for e in reading.evidence] == ["bonne reception", "date limite"]


@pytest.mark.parametrize(("text", "day", "days"), [
    ("un délai jusqu'au 30 mai", date(2014, 5, 30), None),
    ("la date du 15 mai peut-elle être reportée au 2 juin 2014 ?", date(2014, 6, 2), None),
    ("report au 31/05/2014", date(2014, 5, 31), None),
    ("report au 28/05", date(2014, 5, 28), None),
    ("repoussée à fin mai", date(2014, 5, 31), None),
    ("un délai supplémentaire d'une semaine", None, 7),
    ("prolongation de 10 jours", None, 10),
    ("un délai supplémentaire", None, None),
])
def test_the_date_asked(text: str, day: date | None, days: int | None) -> None:
    assert date_asked(text, TODAY) == (day, days)


@pytest.mark.parametrize(("subject", "body"), OUT_OF_OFFICE)
def test_out_of_office_replies_are_automated_and_never_read(subject: str, body: str) -> None:
    raw = build_email(subject=subject, body=body, extra_headers=[("Auto-Submitted", "auto-replied")])
    assert automated_reason(parse_message(raw), own_addresses={"conventions@ville.gouv.fr"})


def table(corpus: Sequence[tuple[str, set[str] | str]] = CORPUS) -> str:
    """A precision/recall table of docs/conversation.md."""
    lines = ["| decision | right | decided | expected | precision | recall |", "| --- | --- | --- | --- | --- | --- |"]
    for name, (tp, predicted, expected) in measure(corpus).items():
        precision = f"{100 * tp / predicted:.1f} %" if predicted else "-"
        recall = f"{100 * tp / expected:.1f} %" if expected else "-"
        lines.append(f"| {name} | {tp} | {predicted} | {expected} | {precision} | {recall} |")
    return "\n".join(lines)


def test_docs_show_the_measured_tables() -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert table(CORPUS) in doc and table(HELD_OUT) in doc
    for intent in INTENTS:
        assert f"| `{intent.name}` |" in doc


if __name__ == "__main__":
    for corpus in (CORPUS, HELD_OUT):
        print(f"{len(corpus)} phrasings\n")
        print(table(corpus))
        for text, expected in corpus:
            if decision(text) != expected:
                print("MISS", expected, decision(text), text[:90].replace("\n", " "))
