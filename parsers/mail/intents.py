"""What a region's message asks, when it carries no return: rule tables over folded text.

Pure and rule-based (no network model): the sender's own text (quoted thread and signature cut by
the caller, :func:`parsers.documents.narrative.own_text`) is split into sentences, each folded with
:func:`parsers.text.fold` (no accents, no capitals, no punctuation), and matched against the cue
phrases of :data:`INTENTS`. The tables, their meaning and the measured precision are documented in
``docs/conversation.md``; the corpus that measures them is ``tests/intake/conversation/corpus.py``.

* A cue of an intent marked ``asked`` counts only in a sentence that asks something: it ends with
  « ? » or holds one of :data:`ASKING` (« pouvez-vous », « merci de me confirmer »...). « Nous avons
  bien reçu votre relance » is then no question about our reception.
* A cue of :data:`ANNOUNCES_ATTACHMENT` (« ci-joint », « veuillez trouver ») means the message
  meant to carry a return: the caller answers it as a return (``no_return_found`` when the file
  is missing).
* A text of fewer than ``MIN_CONTENT_WORDS`` words besides politeness says nothing: the caller
  answers it as today (``no_return_found``).
* A question that no intent recognises is *unmatched*: the message goes to a person, never to a
  guessed answer.
* :func:`date_asked` reads the date (or the number of days) a request for more time asks for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from parsers.text import fold, strip_accents


@dataclass(frozen=True)
class Intent:
    name: str
    meaning: str
    answer: str  # "dossier" | "campaign" | "template" | "person"
    cues: tuple[str, ...]  # regular expressions over folded text
    asked: bool = True  # cues count only in a sentence that asks something
    unless: tuple[str, ...] = ()  # a sentence with one of these does not count
    overrides: tuple[str, ...] = ()  # intents dropped when this one is found



# The order is the order answers appear in a reply.
INTENTS: tuple[Intent, ...] = (
    Intent(
        "receipt", "confirmation de réception, état du dossier", "dossier",
        cues=(
            r"\b(bonne|bien) reception\b",
            r"\baccuse[rz]? (de )?reception\b",
            r"\bconfirm\w* (de )?(la )?reception\b",
            r"\bavez vous (bien )?(recu|recus|eu|reussi)",
            r"\bbien (ete )?(recu|recue|recus|recues|arrive|arrivee|arrives|parvenu|parvenue|parvenus|enregist"
            r"re|enregistree)\b",
            r"\b(recu|recue|reception) (de |du )?(notre|nos|mon|le) (bilan|envoi|dossier|tableau|fichier|mail|"
            r"message|courriel|analyse)",
            r"\bou en est\b",
            r"\b(etat|statut|situation) (de |du )?(notre |mon |le )?(dossier|envoi|bilan)\b",
            r"\b(dossier|bilan|envoi) (est il|est elle|est) (bien )?(complet|valide|conforme|en ordre|enregist"
            r"re)\b",
            r"\bmanque t il\b",
            r"\bil (nous )?manque (encore )?quelque chose\b",
            r"\bmanque (encore )?(quelque chose|des elements)\b",
            r"\bpas eu de retour\b",
            r"\baucun (accuse|retour)\b",
            r"\b(est|sont) (il|ils|elle|elles) (bien )?(arrive|parvenu)",
        ),
    ),
    Intent(
        "extension", "demande de délai supplémentaire", "person",
        cues=(
            r"\bdelai(s)? (supplementaire|complementaire|additionnel|de grace)",
            r"\bprolong\w*",
            r"\breport(er|e|ee|ez)?\b",
            r"\brepouss\w*",
            r"\bdecal(er|age)\b",
            r"\b(jours|semaines?|temps) (de plus|supplementaires?)\b",
            r"\bplus de (temps|delai)\b",
            r"\bun peu de (temps|delai)\b",
            r"\bsursis\b",
            r"\b(rendre|remettre|transmettre|envoyer|enverrons|transmettrons|rendrons|remettrons|serons|sera|a"
            r"rrivera) (le bilan |notre bilan |le tableau |nos elements )?(en|avec du|avec un peu de) retard\b",
            r"\bdelai jusqu\b",
            r"\b(accorder|octroyer|consentir|beneficier d) (un|une) (delai|extension)\b",
            r"\bextension\b",
        ),
        asked=False,
        unless=(
            r"\bmerci (pour|de) (la|cette|votre) (prolongation|extension|report)",
            r"\b(prolongation|report|delai) (accorde|accordee|obtenu|obtenue)\b",
            r"\bpas besoin\b",
            r"\bne sera pas necessaire\b",
            r"\breport\w* (sur|dans) (la colonne|l onglet|le tableau|la feuille)",
            r"\bse reporter\b",
            r"\breport\w* (les|des|le) (chiffres|valeurs|donnees|indicateurs)\b",
        ),
        overrides=("deadline",),
    ),
    Intent(
        "deadline", "la date limite", "campaign",
        cues=(
            r"\bdate (limite|butoir|de remise|de retour|d envoi|de transmission)\b",
            r"\becheance\b",
            r"\bjusqu a quand\b",
            r"\bavant quelle date\b",
            r"\bpour quand\b",
            r"\bquand (faut il|doit on|devons nous|dois je)\b",
            r"\bquel (est le )?delai\b",
            r"\bdelai (de remise|de transmission|de retour|d envoi|imparti)\b",
            r"\btoujours (le|au|fixe[e]? au) \d+",
            r"\bdeadline\b",
        ),
    ),
    Intent(
        "template", "le modèle de tableau à remplir", "template",
        cues=(
            r"\b(le|la|un|une|du|votre|ce|cette) (modele|trame|matrice|gabarit|maquette)\b",
            r"\b(tableau|fichier|document|modele) (de bord )?(vierge|vide|a remplir|a completer|excel a rempli"
            r"r)\b",
            r"\b(trouve|retrouve|trouvons|retrouvons|localise) (pas|plus) (le|la) (tableau|fichier|modele|tram"
            r"e|annexe)",
            r"\blien\b.{0,40}\b(fonctionne|marche|casse|mort|inaccessible|ne s ouvre)",
            r"\bvierge\b",
            r"\b(vous|merci de|de) (me|nous|m) (renvoyer|envoyer|transmettre|retransmettre|faire parvenir|adre"
            r"sser) (a nouveau |de nouveau )?(le|la) (tableau|fichier|annexe)\b",
        ),
        unless=(
            r"\b(notre|nos|mon) (tableau|fichier)",
        ),
    ),
    Intent(
        "format", "le format et le contenu attendus", "campaign",
        cues=(
            r"\b(quel|sous quel|dans quel|au) format\b",
            r"\bformat (excel|pdf|word|ods|odt|xls|xlsx|attendu|souhaite|demande)\b",
            r"\b(en|au format) (pdf|word|excel|ods|odt|xlsx?|docx?|libreoffice|open office)\b",
            r"\b(quels|quelles) (documents|pieces|elements|fichiers|sont les pieces)\b",
            r"\b(que|qu est ce qu il) (faut il|doit on|devons nous|dois je|faut) (vous )?(envoyer|renvoyer|tra"
            r"nsmettre|retransmettre|faire parvenir|adresser|communiquer|fournir|joindre|remettre)",
            r"\bcontenu (du|de ce|de notre) bilan\b",
            r"\ben quoi consiste\b",
            r"\b(acceptez|accepte) vous\b",
            r"(?:^|\bet )(faut il|doit on|devons nous) (aussi |egalement )?(envoyer|joindre|transmettre|fourni"
            r"r) (l analyse|une analyse|le tableau|les deux|un document)",
            r"\bpar (courrier|voie postale|la poste)\b",
            r"\bsignature du prefet\b",
            r"\b(plusieurs|un seul|deux) (envois|messages|fichiers|mails)\b",
            r"\bpar quel (moyen|canal)\b",
        ),
    ),
    Intent(
        "contact", "la personne à contacter", "campaign",
        cues=(
            r"\bqui (contacter|joindre|appeler|s adresser|m adresser|nous adresser)\b",
            r"\bqui (est|sera) (l |notre |votre )?(interlocuteur|referent|contact|correspondant)",
            r"\ba qui (puis je|pouvons nous|dois je|devons nous|faut il|m adresser|nous adresser|s adresser|po"
            r"ser)",
            r"\b(un|une|votre|le|les) (interlocuteur|interlocutrice|referent|correspondant)\w*",
            r"\bpersonne a contacter\b",
            r"\bvos coordonnees\b",
            r"\b(vous|quelqu un) joindre par telephone\b",
            r"\bquelqu un a (contacter|joindre|appeler)\b",
        ),
    ),
)

MIN_CONTENT_WORDS = 3  # « ok merci », « au fond »: nothing to read, answered as today (no_return_found)

# Words that make a sentence ask something, besides a question mark (folded).
ASKING = re.compile(
    r"\b(pouvez vous|pourriez vous|pourrais je|pourrions nous|pouvons nous|puis je|serait il possible|est il possible"
    r"|merci de (bien vouloir )?(me |nous |m )?(confirmer|indiquer|dire|preciser|envoyer|renvoyer|transmettre"
    r"|faire parvenir|communiquer|adresser|accuser)|je (vous )?(souhaiterais|souhaite|voudrais|aimerais)"
    r"|nous (souhaiterions|voudrions|aimerions)"
    r"|j aimerais|savoir si|sauriez vous|dites moi|auriez vous|avez vous|quel|quelle|quels|quelles|quand|comment"
    r"|ou en est|est ce que|je me permets de vous (demander|solliciter)|nous nous permettons|je sollicite"
    r"|nous sollicitons|vous serait il possible"
    r"|vous remercie de (bien vouloir )?(me |nous )?(confirmer|indiquer|preciser|envoyer|transmettre))\b"
)

ANNOUNCES_ATTACHMENT = re.compile(
    r"\b(ci joint|ci jointe|ci joints|ci jointes|veuillez trouver|vous trouverez|en piece jointe|en pieces jointes"
    r"|en pj|je vous (transmets|adresse|envoie|fais parvenir|joins|renvoie)"
    r" (ci |le |la |les |notre |nos |mon |ma |l |un |une )"
    r"|nous vous (transmettons|adressons|envoyons|faisons parvenir|joignons|renvoyons)"
    r" (le |la |les |notre |nos |l |un |une )"
    r"|(joint|jointe) a ce (message|courriel|mail))\b"
)
# Politeness that says nothing (a sentence made only of these is no content).
_POLITE = re.compile(
    r"^(bonjour|bonsoir|madame|monsieur|messieurs|mesdames|cher|chere|chers|collegues|a tous|a toutes|tous|toutes"
    r"|bien|cordialement|merci|d avance|par avance|bonne journee|bonne fin de journee|salutations|sinceres|meilleures"
    r"|respectueusement|tres|et|a|vous|de|votre|retour|l|attente|dans|je|reste|a votre|disposition|pour|tout"
    r"|complement|d information|information|bien a vous|\s)+$"
)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_GREETING = re.compile(r"^\s*(bonjour|bonsoir|madame|monsieur|cher|chere)\b[^,\n]{0,40},?\s*", re.IGNORECASE)

MONTHS = ("janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout", "septembre", "octobre", "novembre",
          "decembre")
_DAY_MONTH = re.compile(r"\b(\d{1,2})(?:\s?er)?\s+(" + "|".join(MONTHS) + r")(?:\s+(\d{4}))?\b")
_NUMERIC = re.compile(r"(?<![\d/])(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{4}|\d{2}))?(?![\d/])")
_END_OF = re.compile(r"\bfin\s+(?:du mois de\s+|de\s+)?(" + "|".join(MONTHS) + r")\b")
_NUMBERS = {"un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7, "huit": 8, "dix": 10,
            "quinze": 15, "quelques": 0}
_DURATION = re.compile(r"\b(\d{1,2}|un|une|deux|trois|quatre|cinq|six|sept|huit|dix|quinze) (jours?|semaines?)\b")


@dataclass(frozen=True)
class Evidence:
    intent: str
    cue: str  # the words that matched
    sentence: str  # the folded sentence they were found in


@dataclass(frozen=True)
class Reading:
    """What a message's own text asks."""

    text: str  # the text read (the sender's own)
    intents: tuple[str, ...]  # in the order of INTENTS
    evidence: tuple[Evidence, ...]
    unmatched: tuple[str, ...]  # questions no intent recognised (folded)
    announces_attachment: bool
    has_content: bool  # more than greetings and politeness: MIN_CONTENT_WORDS words at least
    date_asked: date | None = None  # for "extension": the day asked for
    days_asked: int | None = None  # for "extension": « une semaine », « 15 jours »

    @property
    def confident(self) -> bool:
        """Every question found an intent, and there is at least one."""
        return bool(self.intents) and not self.unmatched


def sentences(text: str) -> list[tuple[str, bool]]:
    """(folded sentence, ends with a question mark) for each sentence of ``text``."""
    result: list[tuple[str, bool]] = []
    for line in text.splitlines():
        line = _GREETING.sub("", line)
        for m in _SENTENCE.finditer(line):
            raw = m.group(0)
            folded = fold(raw)
            if folded:
                result.append((folded, raw.rstrip().endswith("?")))
    return result


def read_message(text: str, today: date | None = None) -> Reading:
    """The intents of ``text`` (the sender's own words), with their evidence."""
    found: dict[str, Evidence] = {}
    unmatched: list[str] = []
    announces = False
    content_words = 0
    for folded, question in sentences(text):
        if ANNOUNCES_ATTACHMENT.search(folded):
            announces = True
        if not _POLITE.match(folded):
            content_words += len(folded.split())
        asking = question or bool(ASKING.search(folded))
        matched = False
        for intent in INTENTS:
            if intent.asked and not asking:
                continue
            if any(re.search(u, folded) for u in intent.unless):
                continue
            for cue in intent.cues:
                m = re.search(cue, folded)
                if m:
                    matched = True
                    found.setdefault(intent.name, Evidence(intent.name, m.group(0), folded))
                    break
        if question and not matched and not _POLITE.match(folded):
            unmatched.append(folded)
    dropped = {o for name in found for o in next(i for i in INTENTS if i.name == name).overrides}
    names = tuple(i.name for i in INTENTS if i.name in found and i.name not in dropped)
    asked_day, days = (None, None)
    if "extension" in names:
        asked_day, days = date_asked(text, today)
    return Reading(text=text, intents=names, evidence=tuple(found[n] for n in names), unmatched=tuple(unmatched),
                   announces_attachment=announces, has_content=content_words >= MIN_CONTENT_WORDS,
                   date_asked=asked_day, days_asked=days)


def date_asked(text: str, today: date | None = None) -> tuple[date | None, int | None]:
    """The day a request asks for (« jusqu'au 30 mai », « au 06/06 », « fin mai »: the latest day
    written, a request asking for a later one than the deadline it may quote), or else the number
    of days (« une semaine », « 15 jours »); the year is ``today``'s when not written."""
    year = (today or date.today()).year
    lowered = strip_accents(text).lower()
    days: list[date] = []
    for m in _DAY_MONTH.finditer(lowered):
        days.extend(d for d in [_safe_date(int(m.group(3) or year), MONTHS.index(m.group(2)) + 1, int(m.group(1)))]
                    if d is not None)
    for m in _NUMERIC.finditer(lowered):
        y = int(m.group(3)) if m.group(3) else year
        days.extend(d for d in [_safe_date(y + 2000 if y < 100 else y, int(m.group(2)), int(m.group(1)))]
                    if d is not None)
    for m in _END_OF.finditer(lowered):
        month = MONTHS.index(m.group(1)) + 1
        days.append(date.fromordinal(date(year + (month == 12), month % 12 + 1, 1).toordinal() - 1))
    if days:
        return max(days), None
    duration = _DURATION.search(fold(text))
    if duration:
        n = int(duration.group(1)) if duration.group(1).isdigit() else _NUMBERS[duration.group(1)]
        return None, n * (7 if duration.group(2).startswith("semaine") else 1)
    return None, None


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None
