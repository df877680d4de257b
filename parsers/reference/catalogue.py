"""Reference data shipped with the package: indicators, regions, narrative points, conventions.

The CSV files under ``parsers/data`` are the project's own copies of the shared reference
(see docs/reference.md). They are read once per process and cached: they never change at run time.
"""

from __future__ import annotations

import csv
import io
from functools import lru_cache
from importlib import resources
from typing import cast

from parsers.model import Convention, FilledBy, Indicator, NarrativePoint, Region, Unit

GEOGRAPHIES = (2014, 2016)


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("parsers.reference").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@lru_cache(maxsize=1)
def indicators() -> tuple[Indicator, ...]:
    """The 32 indicators of Annexe 2, in document order (I01..I32)."""
    return tuple(
        Indicator(
            id=row["id"],
            convention=row["convention"],
            strategic_objective=row["objectif_strategique"],
            operational_objective=row["objectif_operationnel"],
            bop=row["bop"],
            label=row["indicateur"],
            national_target=row["valeur_cible_nationale"],
            unit=cast(Unit, row["unit"]),
            filled_by=cast(FilledBy, row["filled_by"]),
            mode=row["mode_de_renseignement"],
        )
        for row in _read_csv("indicators.csv")
    )


@lru_cache(maxsize=1)
def indicators_by_id() -> dict[str, Indicator]:
    return {ind.id: ind for ind in indicators()}


def local_indicators() -> tuple[Indicator, ...]:
    return tuple(ind for ind in indicators() if ind.is_local)


@lru_cache(maxsize=4)
def regions(geography: int) -> tuple[Region, ...]:
    """The regions of the 2014 list (27) or of the 2016 list (18)."""
    if geography not in GEOGRAPHIES:
        raise ValueError(f"unknown geography {geography}; expected one of {GEOGRAPHIES}")
    return tuple(
        Region(code=row["code"], name=row["name"], kind=row["kind"], geography=geography)
        for row in _read_csv(f"regions-{geography}.csv")
    )


@lru_cache(maxsize=1)
def formed_from() -> dict[str, tuple[str, ...]]:
    """2016 region code -> the 2014 region codes it was formed from (``formed_from`` of
    regions-2016.csv): ("42", "21", "41") for Grand Est, ("53",) for Bretagne, which kept its borders."""
    return {row["code"]: tuple(row["formed_from"].split(";")) for row in _read_csv("regions-2016.csv")}


def predecessors(code: str, geography: int, earlier: int) -> tuple[str, ...]:
    """The codes, in the ``earlier`` geography, of the region(s) that region ``code`` of ``geography``
    continues: its 2014 predecessors across the 2016 merger, else itself."""
    if geography == 2016 and earlier == 2014:
        return formed_from().get(code, (code,))
    return (code,)


@lru_cache(maxsize=1)
def all_region_codes() -> frozenset[str]:
    return frozenset(r.code for g in GEOGRAPHIES for r in regions(g))


def geography_for_year(year: int) -> int:
    """The region list in force for a campaign reviewing ``year``.

    The 2016 reform applies from 1 January 2016: a return on 2015 or later is collected
    from the new regions.
    """
    return 2016 if year >= 2015 else 2014


def region_name(code: str, geography: int | None = None) -> str | None:
    for g in (geography,) if geography else GEOGRAPHIES:
        if g is None:
            continue
        for r in regions(g):
            if r.code == code:
                return r.name
    return None


# The six points of the qualitative analysis, in the order of the notice.
# Keyword syntax (matched by parsers.narrative): a keyword in UPPER CASE is an acronym matched
# case-sensitively as a whole word ("CAR" is not the conjunction "car"); any other keyword is
# folded (lower case, no accents, punctuation as spaces) and matched on folded text at word
# boundaries, its last word taking any suffix when it has 5 letters or more ("difficulte" matches
# "difficultes"), else only a plural s/x. Phrases, acronyms and single words of 10 letters or
# more weigh 2, other single words 1 (see parsers.narrative for the thresholds).
NARRATIVE_POINTS: tuple[NarrativePoint, ...] = (
    NarrativePoint(
        "P1",
        "Modalités de mise en œuvre au plan local (CAR, collège des chefs de service)",
        ("modalites de mise en oeuvre", "CAR", "comite de l'administration regionale",
         "college des chefs de service", "college des chefs", "instances collegiales", "college plenier",
         "gouvernance", "comite de pilotage", "COPIL", "reunion des chefs de service", "pilotage",
         "referent", "sous-prefet"),
    ),
    NarrativePoint(
        "P2",
        "État des lieux de l'appropriation des conventions et de la mobilisation des services de l'État",
        ("appropriation", "etat des lieux", "mobilisation des services", "services de l'etat mobilises",
         "mobilisation des differents services", "services deconcentres", "se sont saisis",
         "se sont approprie", "services mobilises", "mobilisation inegale", "connaissance des conventions"),
    ),
    NarrativePoint(
        "P3",
        "Articulation entre le niveau régional et le niveau départemental",
        ("articulation", "niveau regional et le niveau departemental", "niveau departemental",
         "echelon departemental", "echelon regional", "prefets de departement", "prefectures de departement",
         "directions departementales", "DDCS", "DDCSPP", "entre la region et les departements"),
    ),
    NarrativePoint(
        "P4",
        "Méthodes de suivi développées",
        ("methodes de suivi", "methode de suivi", "dispositif de suivi", "outil de suivi", "outils de suivi",
         "tableau de suivi", "tableaux de suivi", "modalites de suivi", "suivi des indicateurs",
         "comite de suivi", "reunions de suivi", "suivi annuel", "suivi trimestriel", "suivi semestriel",
         "remontee des indicateurs", "evaluation"),
    ),
    NarrativePoint(
        "P5",
        "Engagements déjà déclinés localement (actions mises en place, premiers résultats)",
        ("declinaison locale", "declines localement", "actions mises en place", "actions menees",
         "premiers resultats", "actions engagees", "resultats obtenus", "declinaison",
         "ont ete mises en place", "a ete mis en place", "ont ete engagees",
         "realisations", "engagements declines"),
    ),
    NarrativePoint(
        "P6",
        "Difficultés rencontrées dans la mise en œuvre",
        ("difficulte", "obstacles", "freins", "points de blocage", "point de blocage",
         "points de vigilance", "manque de moyens", "faute de", "se heurte", "retard pris"),
    ),
)

# The twelve conventions signed at the date of the instruction (Annexe 1), in its order.
CONVENTIONS: tuple[Convention, ...] = (
    Convention("sports-jeunesse", "Sports, jeunesse, éducation populaire et vie associative", "4 avril 2013",
               ("sport", "jeunesse", "vie associative", "education populaire", "service civique", "CNDS",
                "DRJSCS", "associations de proximite")),
    Convention("sante-affaires-sociales", "Santé et affaires sociales", "19 avril 2013",
               ("sante", "affaires sociales", "ARS", "CAF", "creche", "medecin", "CPAM", "acces aux soins",
                "ateliers sante ville", "contrats locaux de sante", "CMU")),
    Convention("travail-emploi", "Travail, emploi, formation professionnelle et dialogue social", "25 avril 2013",
               ("emploi", "pole emploi", "apprentissage", "emplois d'avenir", "CUI", "CIVIS", "DIRECCTE",
                "missions locales", "contrat unique d'insertion", "NACRE", "emplois francs")),
    Convention("droits-des-femmes", "Droits des femmes", "21 mai 2013",
               ("droits des femmes", "egalite entre les femmes et les hommes", "marches exploratoires", "FGIF",
                "CIDFF", "egalite femmes-hommes")),
    Convention("transports", "Transports, mer et pêche", "7 juin 2013",
               ("transport", "desserte", "mobilite", "TCSP", "plans de deplacements urbains",
                "autorites organisatrices")),
    Convention("justice", "Justice", "8 juillet 2013",
               ("justice", "parquet", "bailleurs sociaux", "defenseur des droits", "maison de justice", "recidive",
                "aide aux victimes", "acces au droit", "MJD")),
    Convention("defense-anciens-combattants", "Défense et anciens combattants", "15 juillet 2013",
               ("ministere de la defense", "anciens combattants", "RLJC", "memoriel", "defense et citoyennete",
                "reservistes", "ONAC")),
    Convention("interieur", "Intérieur", "27 septembre 2013",
               ("ministere de l'interieur", "police", "gendarmerie", "ZSP", "delinquance", "DDSP",
                "prevention de la delinquance", "FIPD", "tranquillite publique")),
    Convention("economie-sociale-solidaire", "Économie sociale et solidaire et consommation", "27 septembre 2013",
               ("economie sociale et solidaire", "ESS", "SIAE", "insertion par l'activite economique", "SCOP",
                "clauses d'insertion", "entrepreneuriat social")),
    Convention("education", "Éducation nationale et réussite éducative", "7 octobre 2013",
               ("education nationale", "rectorat", "recteur", "scolarisation", "reussite educative",
                "decrochage", "plus de maitres que de classes", "education prioritaire", "PRE")),
    Convention("artisanat-commerce-tourisme", "Artisanat, commerce et tourisme", "décembre 2013",
               ("artisanat", "commerce", "tourisme", "FISAC", "CCI", "chambres des metiers", "EPARECA",
                "chambre de commerce")),
    Convention("culture-communication", "Culture et communication", "février 2014",
               ("culture", "education artistique", "artistique", "medias de proximite", "DRAC")),
)


def narrative_point(point_id: str) -> NarrativePoint:
    return next(p for p in NARRATIVE_POINTS if p.id == point_id)
