"""The French words of every issue: what is wrong and how to fix it.

Each code has a default severity and a message template. Templates use ``str.format`` fields;
a field the caller does not give is left as a neutral word rather than raising, so a message is
always produced. Codes are stable: they appear in JSON output, in the store and in the docs
(docs/issue-codes.md lists them for users).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from parsers.model import Issue, Severity


@dataclass(frozen=True)
class IssueKind:
    code: str
    severity: Severity
    template: str


_KINDS = (
    # ---- the file itself
    IssueKind("unreadable_file", "error",
              "Le fichier « {file} » ne peut pas être lu : {reason}. Enregistrez le tableau au format "
              "Excel (.xlsx) depuis Excel ou LibreOffice, sans mot de passe, et renvoyez-le."),
    IssueKind("template_not_recognised", "error",
              "Le fichier « {file} » ne contient pas le tableau de l'annexe 2 : aucune feuille n'a de ligne "
              "d'en-têtes avec les colonnes « Indicateur » et « Résultat régional ». Utilisez le modèle "
              "fourni (ou gardez ces intitulés de colonnes) et renvoyez le fichier."),
    IssueKind("missing_column", "error",
              "La colonne « {column} » est introuvable dans la feuille « {sheet} » (ligne d'en-têtes "
              "{header_row}). Rétablissez cette colonne avec son intitulé et renvoyez le fichier."),
    IssueKind("missing_indicator", "error",
              "L'indicateur « {label} » ({indicator}) est absent du tableau (feuille « {sheet} »). "
              "Ajoutez sa ligne avec l'intitulé de l'annexe 2, son résultat et ses observations."),
    IssueKind("unknown_indicator", "warning",
              "La ligne {row} (« {value} ») ne correspond à aucun indicateur de l'annexe 2 ; elle n'a "
              "pas été prise en compte. Vérifiez l'intitulé si elle devait correspondre à un indicateur."),
    IssueKind("ambiguous_indicator", "error",
              "{line} : l'intitulé « {value} » (cellule {cell}) peut désigner plusieurs indicateurs "
              "({candidates}). Reprenez l'intitulé exact de l'annexe 2."),
    IssueKind("duplicate_indicator", "error",
              "L'indicateur « {label} » ({indicator}) apparaît plusieurs fois (cellules {cells}). "
              "Ne gardez qu'une ligne par indicateur."),
    # ---- values
    IssueKind("not_a_number", "error",
              "{line} : la valeur « {value} » (cellule {cell}) n'est pas un nombre. "
              "{expected} Mettez les explications dans la colonne « Observations »."),
    IssueKind("not_an_integer", "error",
              "{line} : la valeur {value} (cellule {cell}) doit être un nombre entier "
              "(c'est un décompte). Indiquez un nombre entier."),
    IssueKind("out_of_range", "error",
              "{line} : la valeur {value} (cellule {cell}) est hors des bornes ({bounds}). {advice}"),
    IssueKind("formula_without_value", "error",
              "{line} : la cellule {cell} contient une formule ({formula}) sans résultat "
              "enregistré. Ouvrez le fichier dans Excel ou LibreOffice, laissez-le recalculer, "
              "enregistrez-le puis renvoyez-le (ou saisissez directement la valeur)."),
    IssueKind("cell_error", "error",
              "{line} : la cellule {cell} affiche une erreur de calcul ({value}). "
              "Corrigez la formule ou saisissez la valeur."),
    IssueKind("missing_value", "warning",
              "{line} : ni résultat ni observation (cellule {cell}). Indiquez le résultat, "
              "ou « NC » avec une observation expliquant pourquoi la donnée n'est pas disponible."),
    IssueKind("empty_return", "error",
              "Le tableau « {file} » (feuille « {sheet} ») ne contient aucun résultat ni aucune observation "
              "pour les indicateurs à renseigner localement : c'est sans doute le modèle vierge. Complétez "
              "la colonne « Résultat régional » et les observations, puis renvoyez le fichier."),
    IssueKind("missing_observation", "warning",
              "{line} : la colonne « Observations » est vide (cellule {cell}). La notice "
              "demande d'y préciser la cible régionale, l'analyse des écarts, le contexte ou les "
              "difficultés de collecte."),
    IssueKind("national_indicator", "warning",
              "{line} : cet indicateur est renseigné au niveau national ; la valeur {value} (cellule "
              "{cell}) est conservée à titre d'information. Rien à faire de votre côté."),
    IssueKind("ambiguous_percent", "warning",
              "{line} : la valeur {value} (cellule {cell}) a été lue comme {points} %. "
              "Si ce n'est pas le cas, saisissez le pourcentage en points (par exemple « 25 % » ou 25)."),
    IssueKind("year_mismatch", "warning",
              "La colonne de résultats porte sur l'année {found} (cellule {cell}) alors que la campagne "
              "en cours porte sur {expected}. Vérifiez qu'il s'agit du bon tableau."),
    # ---- the message
    IssueKind("region_mismatch", "error",
              "Le tableau indique la région « {found} » (cellule {cell}) alors que l'expéditeur relève de "
              "la région « {expected} ». Vérifiez le fichier joint et renvoyez celui de votre région."),
    IssueKind("region_not_found", "warning",
              "Le tableau ne mentionne pas de région (par exemple « Région : Bretagne » en tête de "
              "feuille). Le retour a été rattaché à la région de l'expéditeur, « {expected} »."),
    IssueKind("unknown_sender", "error",
              "L'adresse « {value} » n'est rattachée à aucune région. Le message a été mis de côté pour "
              "un administrateur ; écrivez depuis l'adresse de la préfecture de région déclarée."),
    IssueKind("no_return_found", "error",
              "Aucun tableau de bord (fichier Excel) ni analyse qualitative n'a été trouvé dans votre "
              "message. La pièce jointe a peut-être été oubliée : renvoyez le message avec le tableau "
              "au format tableur (.xlsx, .ods ou .xls) et l'analyse qualitative (dans le corps du message "
              "ou en pièce jointe)."),
    IssueKind("table_not_spreadsheet", "error",
              "Le tableau de bord n'a été reçu que sous forme {forms} ({files}) : nous ne pouvons pas en "
              "lire les chiffres. Joignez le tableau lui-même, le fichier tableur (.xlsx, .ods ou .xls) "
              "enregistré depuis Excel ou LibreOffice, et renvoyez le message."),
    IssueKind("unsupported_attachment", "warning",
              "La pièce jointe « {file} » n'a pas été utilisée ({reason})."),
    IssueKind("identical_file", "warning",
              "Le fichier « {file} » est identique à la version déjà enregistrée le {date} ; "
              "aucune nouvelle version n'a été créée."),
    # ---- narrative
    IssueKind("narrative_point_missing", "warning",
              "L'analyse qualitative ({file}) ne semble pas traiter le point « {point} ». Complétez-la "
              "si ce point vous concerne."),
    IssueKind("narrative_empty", "warning",
              "L'analyse qualitative ({file}) ne contient pas de texte lisible. S'il s'agit d'un scan, "
              "envoyez plutôt le document texte (.docx, .odt ou .pdf texte)."),
    # ---- year over year (parsers/workbook/history.py, docs/value-rules.md): never errors
    IssueKind("same_table_as_last_year", "warning",
              "Les {count} valeurs du tableau « {file} » (feuille « {sheet} ») sont toutes identiques à celles "
              "du bilan {previous_year} ({region}). Vérifiez que vous avez bien saisi les résultats de {year} "
              "et non recopié ceux de l'an dernier."),
    IssueKind("same_as_last_year", "warning",
              "{indicator} « {label} » : {value} cette année, exactement comme en {previous_year}{detail} "
              "(cellule {cell}). Vérifiez qu'il ne s'agit pas du chiffre de l'an dernier recopié ; si le "
              "chiffre est stable, dites-le dans les observations."),
    IssueKind("count_jump", "warning",
              "{indicator} « {label} » : {value} cette année contre {before} en {previous_year}{change} "
              "(cellule {cell}) : vérifiez l'unité ou expliquez l'écart dans les observations."),
    IssueKind("percent_jump", "warning",
              "{indicator} « {label} » : {value} cette année contre {before} en {previous_year}, un écart "
              "de plus de {points} points (cellule {cell}) : vérifiez la valeur (écrivez 25 pour 25 %) ou "
              "expliquez l'écart dans les observations."),
    IssueKind("carried_template_unfilled", "error",
              "Le tableau « {file} » (feuille « {sheet} ») ne contient aucun résultat : seules y figurent les "
              "observations du bilan {previous_year}, reprises dans le modèle comme point de départ. Saisissez "
              "les résultats de {year} dans la colonne « Résultat régional », mettez les observations à jour, "
              "puis renvoyez le fichier."),
    IssueKind("carried_observation", "warning",
              "{indicator} « {label} » : aucun résultat (cellule {cell}), et l'observation est celle du bilan "
              "{previous_year}, reprise du modèle. Indiquez le résultat de {year}, ou « NC » avec une "
              "observation à jour."),
    # ---- sender authentication and limits (docs/reliability.md)
    IssueKind("unauthenticated_sender", "error",
              "Le message de « {value} » n'a pas pu être authentifié : notre serveur de réception n'a "
              "constaté ni DMARC, ni signature DKIM, ni SPF valides pour le domaine de l'expéditeur. Il n'a "
              "pas été enregistré comme bilan et a été mis de côté pour un administrateur. Envoyez votre "
              "bilan depuis la messagerie officielle de votre préfecture, ou demandez à votre service "
              "informatique de vérifier la configuration DKIM/SPF de votre domaine."),
    IssueKind("message_too_large", "error",
              "Votre message fait {size}, au-delà de la taille maximale de {limit} : il a été conservé mais "
              "n'a pas été analysé. Envoyez le tableau de bord et l'analyse qualitative dans des messages "
              "séparés, ou réduisez la taille des pièces jointes (retirez les images, compressez les "
              "documents numérisés, enregistrez le tableau seul au format .xlsx), puis renvoyez-les."),
    IssueKind("too_many_attachments", "warning",
              "Votre message contient {count} pièces jointes ; seules les {limit} premières ont été "
              "examinées. Les suivantes n'ont pas été ouvertes : {files}. Si l'une d'elles fait partie du "
              "bilan, renvoyez-la dans un autre message."),
    IssueKind("attachment_too_large", "error",
              "La pièce jointe « {file} » fait {size}, au-delà de la taille maximale de {limit} par pièce "
              "jointe : elle n'a pas été ouverte. Enregistrez le tableau seul (sans images ni feuilles "
              "superflues) ou réduisez la taille du document, puis renvoyez-le."),
    IssueKind("file_too_large", "error",
              "Le fichier « {file} » occuperait plus de {limit} une fois décompressé : par sécurité, il "
              "n'a pas été ouvert. Enregistrez le tableau seul (sans images ni feuilles superflues) au "
              "format .xlsx et renvoyez-le."),
    IssueKind("suspicious_compression", "error",
              "Le fichier « {file} » contient un élément compressé plus de {ratio} fois : un fichier "
              "bureautique ordinaire ne l'est jamais autant, il n'a donc pas été ouvert par sécurité. "
              "Enregistrez de nouveau le tableau depuis Excel ou LibreOffice et renvoyez-le."),
    IssueKind("sheet_truncated", "warning",
              "La feuille « {sheet} » du fichier « {file} » dépasse {rows} lignes ou {cols} colonnes : "
              "seules les premières ont été lues. Si une partie du tableau de l'annexe 2 se trouve au-delà, "
              "supprimez les lignes ou colonnes superflues et renvoyez le fichier."),
    IssueKind("file_too_slow", "error",
              "La lecture du fichier « {file} » a dépassé {seconds} secondes et a été interrompue. "
              "Enregistrez le tableau seul (sans feuilles ni données superflues) au format .xlsx et "
              "renvoyez-le."),
    # ---- archives: a .zip is opened, its files read as attachments (parsers/mail/archives.py)
    IssueKind("archive_unreadable", "error",
              "L'archive « {file} » ne peut pas être ouverte ({reason}). Joignez directement les fichiers "
              "(le tableau au format .xlsx et l'analyse qualitative), ou refaites l'archive .zip et renvoyez-la."),
    IssueKind("archive_member_unreadable", "error",
              "Le fichier « {file} » n'a pas pu être extrait de l'archive ({reason}). Joignez-le directement "
              "au message, ou refaites l'archive .zip et renvoyez-la."),
    IssueKind("archive_too_large", "error",
              "L'archive « {file} » {reason} : par sécurité, elle n'a pas été ouverte. Joignez directement "
              "le tableau au format .xlsx et l'analyse qualitative, sans les autres documents."),
    IssueKind("archive_nested", "error",
              "L'archive « {file} » contient elle-même une archive (« {member} ») : une archive placée dans "
              "une archive n'est pas ouverte. Joignez directement les fichiers qu'elle contient, ou "
              "regroupez-les dans une seule archive .zip."),
    IssueKind("archive_encrypted", "error",
              "Dans l'archive « {file} », un mot de passe empêche de lire : {members}. Joignez ce(s) "
              "fichier(s) directement au message, ou refaites l'archive .zip sans mot de passe."),
    IssueKind("archive_unsupported", "error",
              "La pièce jointe « {file} » est une archive {format}, un format que nous n'ouvrons pas. "
              "Joignez directement les fichiers (le tableau au format .xlsx et l'analyse qualitative), ou "
              "regroupez-les dans une archive .zip."),
)

KINDS: dict[str, IssueKind] = {k.code: k for k in _KINDS}

# Why a file could not be opened (parsers.model.UnreadableFile.reason), in French: the only words of
# a reason a person reads, never the internal one.
UNREADABLE_REASONS = {
    "encrypted": "il est protégé par un mot de passe : retirez le mot de passe avant de l'envoyer",
    "corrupt": "il est endommagé ou incomplet",
    "not_a_spreadsheet": "ce n'est pas un classeur Excel ou LibreOffice",
    "too_large": "il est trop volumineux",
    "too_slow": "sa lecture a pris trop de temps",
    "unsupported": "ce format de fichier n'est pas pris en charge",
}
# What to do about a figure out of its bounds, by unit (parsers.model.Unit).
OUT_OF_RANGE_ADVICE = {
    "percent": "Écrivez le pourcentage en points, entre 0 et 100 : écrivez 25 pour 25 % (dans une cellule "
               "au format « Pourcentage », tapez « 25 % »).",
    "count": "Indiquez un nombre positif ou nul, par exemple 12.",
    "count_pair": "Indiquez deux nombres positifs ou nuls : places créées / places rénovées, par exemple « 12 / 5 ».",
}
LABEL_IN_MESSAGE = 60  # characters of an indicator's label quoted in a message


def reason_words(reason: str) -> str:
    """Why a file could not be opened, in French (an unknown internal reason is never shown)."""
    return UNREADABLE_REASONS.get(reason, "il n'a pas pu être ouvert")


def row_of(cell: str | None) -> int | None:
    """The row number of an A1 reference (« G14 » -> 14, « 'Annexe 2'!G14 » -> 14), None if none."""
    match = re.search(r"([A-Z]{1,3})(\d+)$", cell or "")
    return int(match.group(2)) if match else None


def line_name(indicator: str | None, label: str | None, cell: str | None = None) -> str:
    """An indicator's row as the clerk sees it on their sheet: « ligne 14 « Taux de chômage… » (I07) »;
    the code only in brackets. Parts unknown are left out."""
    row = row_of(cell)
    text = " ".join(x for x in (
        f"ligne {row}" if row else "",
        f"« {_shorten(label)} »" if label else "",
        f"({indicator})" if indicator else "") if x)
    return text if row or label else (f"l'indicateur {indicator}" if indicator else "")


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= LABEL_IN_MESSAGE else flat[: LABEL_IN_MESSAGE - 1].rstrip() + "…"


class _Lenient(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def make_issue(
    code: str,
    *,
    severity: Severity | None = None,
    indicator: str | None = None,
    sheet: str | None = None,
    cell: str | None = None,
    value: object = None,
    file: str | None = None,
    **context: object,
) -> Issue:
    """Build an :class:`Issue` whose French message is filled from the catalogue."""
    kind = KINDS[code]
    fields = _Lenient(context)
    fields.setdefault("indicator", indicator or "")
    fields.setdefault("sheet", sheet or "")
    fields.setdefault("cell", cell or "?")
    fields.setdefault("file", file or "")
    fields.setdefault("value", "" if value is None else _show(value))
    fields.setdefault("line", line_name(indicator, _text(context.get("label")), cell))
    fields.setdefault("advice", OUT_OF_RANGE_ADVICE.get(str(context.get("unit")), "Corrigez la valeur."))
    message = kind.template.format_map(fields)
    message = message[:1].upper() + message[1:]
    return Issue(
        severity=severity or kind.severity,
        code=code,
        message=" ".join(message.split()),
        indicator=indicator,
        sheet=sheet,
        cell=cell,
        value=None if value is None else _show(value),
        file=file,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _show(value: object) -> str:
    if isinstance(value, float):
        text = f"{value:.6g}"
        return text.replace(".", ",")
    return str(value)
