"""parsers.mail.forwards: the text of a forwarded message, whichever client forwarded it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.documents.narrative import looks_like_narrative, own_text
from parsers.mail.forwards import MAX_SCANNED_CHARS, Forwarded, forwarded_bodies, is_forward_subject
from parsers.mail.mime import parse_message
from tests.factories.documents import narrative_text
from tests.factories.emails import ForwardingClient, build_email, forward, inline_forward

PREFECT_TEXT = "Madame, Monsieur,\n\nVoici l'analyse du préfet.\n\nLe préfet de région"


@pytest.mark.parametrize("client", ["gmail", "thunderbird", "outlook", "apple"])
def test_an_inline_forward_gives_the_forwarded_text_without_its_headers(client: ForwardingClient) -> None:
    mail = parse_message(inline_forward(PREFECT_TEXT, client=client))
    assert forwarded_bodies(mail.body_text, mail.subject) == [Forwarded("prefet@bretagne.pref.gouv.fr", PREFECT_TEXT)]


def test_a_message_attached_as_rfc822_gives_its_text() -> None:
    inner = build_email(sender="Le Préfet <Prefet@Bretagne.pref.gouv.fr>", body=PREFECT_TEXT, style="thunderbird")
    mail = parse_message(forward(inner))
    [(sender, text)] = [(f.sender, f.text) for f in forwarded_bodies(mail.body_text, mail.subject)]
    assert sender == "prefet@bretagne.pref.gouv.fr"
    assert text.startswith("Madame, Monsieur,") and "Le préfet de région" in text
    assert "Je vous transfère" not in text  # the forwarder's own note stays out


def test_a_forward_of_a_forward_gives_both_texts_in_order() -> None:
    body = ("Pour information.\n\n---------- Forwarded message ---------\nDe : Secrétariat <s@x.fr>\n"
            "Subject: TR: Bilan\n\nTransmis par le secrétariat.\n\n"
            "-------- Message transféré --------\nSujet : Bilan\nDe : Préfet <p@x.fr>\n\nTexte du préfet.")
    assert forwarded_bodies(body, "Fwd: TR: Bilan") == [Forwarded("s@x.fr", "Transmis par le secrétariat."),
                                                        Forwarded("p@x.fr", "Texte du préfet.")]


def test_an_outlook_reply_quotes_a_thread_it_does_not_forward() -> None:
    body = ("Merci, voici nos précisions.\n\nDe : Conventions <conventions@ville.gouv.fr>\n"
            "Envoyé : lundi 12 mai 2014 17:05\nÀ : SGAR\nObjet : Bilan\n\nVotre retour est enregistré.")
    assert forwarded_bodies(body, "RE: Bilan") == []
    ours = Forwarded("conventions@ville.gouv.fr", "Votre retour est enregistré.")
    assert forwarded_bodies(body, "TR: Bilan") == [ours]
    assert forwarded_bodies(body, "RE: TR: Bilan") == []  # a reply to a forward is a reply
    assert forwarded_bodies(body.replace("Merci", "-----Message d'origine-----\nMerci"), "RE: Bilan") == []


def test_a_body_without_forward_gives_nothing() -> None:
    assert forwarded_bodies("Bonjour,\n\nDe : nos services, rien.\n\nCordialement", "Bilan") == []
    assert forwarded_bodies("", "TR: Bilan") == []


def test_a_header_block_without_address_gives_no_sender() -> None:
    body = "Voir ci-dessous.\n\n---------- Forwarded message ---------\nDe : Le préfet\n\nTexte."
    assert forwarded_bodies(body) == [Forwarded(None, "Texte.")]


@pytest.mark.parametrize(("subject", "forward_"), [
    ("TR: Bilan", True), ("TR : Bilan", True), ("Fwd: Bilan", True), ("FW: Bilan", True), ("TR: RE: Bilan", True),
    ("Transf : Bilan", True), ("Tr[2]: Bilan", True), ("RE: Bilan", False), ("RE: TR: Bilan", False),
    ("Transfert du bilan", False), ("Bilan 2013", False),
])
def test_forward_subjects(subject: str, forward_: bool) -> None:
    assert is_forward_subject(subject) is forward_


def test_a_forwarded_narrative_is_cut_from_the_body_but_found_in_the_forward() -> None:
    """The reason forwarded texts are looked at apart: the sender's own text stops at the separator."""
    mail = parse_message(inline_forward(narrative_text(), client="outlook"))
    assert not looks_like_narrative(mail.body_text)
    [forwarded] = forwarded_bodies(mail.body_text, mail.subject)
    assert looks_like_narrative(forwarded.text) and own_text(forwarded.text).startswith("Bilan 2013 des conventions")


def test_a_forward_written_in_html_only_is_found_in_the_text_made_of_it() -> None:
    body = ("Pour information.\n\n---------- Forwarded message ---------\nDe : Préfet <prefet@bretagne.pref.gouv.fr>\n"
            "Date: lun. 12 mai 2014\nSubject: Bilan\n\n" + PREFECT_TEXT)
    mail = parse_message(build_email(style="webmail", html_only=True, subject="Fwd: Bilan", body=body))
    [forwarded] = forwarded_bodies(mail.body_text, mail.subject)
    assert forwarded.sender == "prefet@bretagne.pref.gouv.fr"
    assert forwarded.text.split() == PREFECT_TEXT.split()


_LINES = st.sampled_from(["De : A <a@x.fr>", "From: b@y.org", "Objet : Bilan", "Envoyé : lundi", "À : moi", "",
                          "---------- Forwarded message ---------", "-------- Message transféré --------",
                          "-----Original Message-----", "Begin forwarded message:", "Texte libre.", "  suite"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINES, max_size=40), st.sampled_from(["TR: Bilan", "RE: Bilan", ""]))
def test_any_body_gives_forwarded_texts_taken_from_it_never_an_exception(lines: list[str], subject: str) -> None:
    body = "\n".join(lines)
    for forwarded in forwarded_bodies(body, subject):
        assert forwarded.text.strip() and forwarded.text in body
        assert forwarded.sender is None or forwarded.sender in body


def test_a_body_is_scanned_up_to_max_scanned_chars() -> None:
    forward_ = "---------- Forwarded message ---------\nDe : a@x.fr\n\nTexte."
    assert forwarded_bodies("x\n" * (MAX_SCANNED_CHARS // 2 - 100) + forward_) == [Forwarded("a@x.fr", "Texte.")]
    assert forwarded_bodies("x\n" * (MAX_SCANNED_CHARS // 2) + forward_) == []
