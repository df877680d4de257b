"""Narrative documents built in test code: realistic French prose as txt, docx, odt, pdf, rtf, html.

``narrative_blocks`` returns headings and paragraphs covering the chosen points of the notice and
mentioning the chosen conventions; ``narrative_text`` joins them as plain text; the ``*_bytes``
builders turn blocks into documents as a region's staff would save them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

ALL_POINTS = ("P1", "P2", "P3", "P4", "P5", "P6")


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Table:
    rows: tuple[tuple[str, ...], ...]


Block = str | Heading | Table

_HEADINGS = {
    "P1": "1. Modalités de mise en œuvre au plan local",
    "P2": "2. État des lieux de l'appropriation des conventions",
    "P3": "3. Articulation entre le niveau régional et le niveau départemental",
    "P4": "4. Méthodes de suivi développées",
    "P5": "5. Engagements déjà déclinés localement",
    "P6": "6. Difficultés rencontrées",
}

_PARAGRAPHS = {
    "P1": (
        "Les conventions interministérielles ont été présentées en comité de l'administration régionale "
        "(CAR) le 12 février 2014 par le préfet de région. Chaque préfet de département a ensuite réuni "
        "son collège des chefs de service pour en décliner les priorités ; un sous-préfet référent a été "
        "désigné dans chacun des départements."
    ),
    "P2": (
        "L'appropriation des conventions reste inégale selon les ministères. Les services déconcentrés "
        "chargés de la cohésion sociale et de l'emploi se sont saisis rapidement des engagements, tandis "
        "que d'autres services de l'État découvrent encore leur contenu. Un état des lieux a été dressé "
        "avec chaque direction régionale."
    ),
    "P3": (
        "L'articulation entre le niveau régional et le niveau départemental repose sur une réunion "
        "trimestrielle associant le SGAR, les directions départementales de la cohésion sociale (DDCS) "
        "et les délégués du préfet. Le niveau régional fixe les orientations, l'échelon départemental "
        "les adapte aux contrats de ville."
    ),
    "P4": (
        "Un tableau de suivi partagé a été mis en ligne sur l'espace collaboratif de la préfecture. "
        "Les méthodes de suivi s'appuient sur la remontée semestrielle des indicateurs par les "
        "départements et sur un comité de suivi annuel."
    ),
    "P5": (
        "Parmi les actions mises en place, on peut citer la signature d'une convention avec Pôle emploi "
        "pour l'accueil des jeunes des quartiers et le renforcement du service civique. Les premiers "
        "résultats sont encourageants : 180 jeunes des quartiers prioritaires ont bénéficié d'un emploi "
        "d'avenir en 2013."
    ),
    "P6": (
        "Les difficultés rencontrées tiennent d'abord au calendrier : plusieurs conventions ont été "
        "signées fin 2013, ce qui n'a pas permis de fixer des objectifs territorialisés. La collecte des "
        "données infra-communales se heurte par ailleurs à l'absence de géolocalisation des bénéficiaires."
    ),
}

_CONVENTION_SENTENCES = {
    "sports-jeunesse": "Le CNDS a réservé une part de ses crédits aux équipements sportifs des quartiers.",
    "sante-affaires-sociales": "L'ARS a intégré un volet santé dans chaque contrat de ville.",
    "travail-emploi": "La DIRECCTE suit la part des résidents des ZUS parmi les bénéficiaires des emplois "
                      "d'avenir et du contrat unique d'insertion.",
    "droits-des-femmes": "Des marches exploratoires de femmes ont été organisées dans deux quartiers.",
    "transports": "La desserte des quartiers par les transports en commun a été inscrite dans le plan de "
                  "déplacements urbains.",
    "justice": "Le parquet a signé des conventions avec les bailleurs sociaux.",
    "defense-anciens-combattants": "Le réseau des réservistes locaux à la jeunesse et à la citoyenneté "
                                   "(RLJC) a été mobilisé.",
    "interieur": "La zone de sécurité prioritaire (ZSP) recouvre désormais le quartier prioritaire et la "
                 "police a renforcé sa présence.",
    "economie-sociale-solidaire": "Les structures d'insertion par l'activité économique (SIAE) se sont "
                                  "développées.",
    "education": "Le rectorat a ciblé le dispositif « plus de maîtres que de classes » sur les écoles des "
                 "quartiers.",
    "artisanat-commerce-tourisme": "La CCI et la chambre des métiers accompagnent la création "
                                   "d'entreprises artisanales.",
    "culture-communication": "La DRAC consacre 30 % des crédits d'éducation artistique et culturelle "
                             "aux quartiers.",
}


def narrative_blocks(
    points: Sequence[str] = ALL_POINTS,
    conventions: Sequence[str] = (),
    *,
    region: str = "Bretagne",
    headings: bool = True,
    table: bool = False,
) -> list[Block]:
    """Title, an introduction, then one section per chosen point and a paragraph on conventions."""
    blocks: list[Block] = [
        Heading(f"Bilan 2013 des conventions interministérielles – Région {region}"),
        "Analyse qualitative",
        f"La présente note retrace la première année d'application des conventions en région {region}.",
    ]
    for point in points:
        if headings:
            blocks.append(Heading(_HEADINGS[point]))
        blocks.append(_PARAGRAPHS[point])
    if conventions:
        if table:
            blocks.append(Table((("Convention", "Observation"),
                                 *((c, _CONVENTION_SENTENCES[c]) for c in conventions))))
        else:
            blocks.append(" ".join(_CONVENTION_SENTENCES[c] for c in conventions))
    return blocks


def narrative_text(
    points: Sequence[str] = ALL_POINTS,
    conventions: Sequence[str] = (),
    *,
    region: str = "Bretagne",
    headings: bool = True,
) -> str:
    """The narrative as plain text, one block per paragraph."""
    return blocks_to_text(narrative_blocks(points, conventions, region=region, headings=headings))


def blocks_to_text(blocks: Sequence[Block]) -> str:
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(block.text)
        elif isinstance(block, Table):
            parts.extend(" | ".join(row) for row in block.rows)
        else:
            parts.append(block)
    return "\n\n".join(parts)


def txt_bytes(text: str, encoding: str = "utf-8") -> bytes:
    """``encoding``: utf-8, utf-8-sig (BOM), utf-16 (BOM), cp1252..."""
    return text.replace("\n", "\r\n").encode(encoding)


def docx_bytes(blocks: Sequence[Block]) -> bytes:
    from docx import Document

    document = Document()
    for block in blocks:
        if isinstance(block, Heading):
            document.add_heading(block.text, level=1)
        elif isinstance(block, Table):
            table = document.add_table(rows=len(block.rows), cols=max(len(r) for r in block.rows))
            for r, row in enumerate(block.rows):
                for c, value in enumerate(row):
                    table.cell(r, c).text = value
        else:
            document.add_paragraph(block)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def odt_bytes(blocks: Sequence[Block]) -> bytes:
    from odf.opendocument import OpenDocumentText
    from odf.table import Table as OdfTable
    from odf.table import TableCell, TableColumn, TableRow
    from odf.text import H, P

    document = OpenDocumentText()
    for block in blocks:
        if isinstance(block, Heading):
            document.text.addElement(H(outlinelevel=1, text=block.text))
        elif isinstance(block, Table):
            table = OdfTable(name="Conventions")
            table.addElement(TableColumn(numbercolumnsrepeated=max(len(r) for r in block.rows)))
            for row in block.rows:
                table_row = TableRow()
                for value in row:
                    cell = TableCell()
                    cell.addElement(P(text=value))
                    table_row.addElement(cell)
                table.addElement(table_row)
            document.text.addElement(table)
        else:
            document.text.addElement(P(text=block))
    out = io.BytesIO()
    document.write(out)
    return out.getvalue()


def _latin1(text: str) -> str:
    text = text.replace("œ", "oe").replace("Œ", "OE").replace("’", "'").replace("–", "-")
    return text.replace("«", '"').replace("»", '"').encode("latin-1", "replace").decode("latin-1")


def pdf_bytes(blocks: Sequence[Block]) -> bytes:
    """A text PDF with a core font (Latin-1: œ becomes oe, guillemets become quotes)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    for block in blocks:
        if isinstance(block, Heading):
            pdf.set_font("Helvetica", "B", 13)
            pdf.multi_cell(0, 8, _latin1(block.text), new_x="LMARGIN", new_y="NEXT")
        elif isinstance(block, Table):
            pdf.set_font("Helvetica", "", 10)
            for row in block.rows:
                pdf.multi_cell(0, 6, _latin1(" | ".join(row)), new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.set_font("Helvetica", "", 11)
            pdf.multi_cell(0, 6, _latin1(block), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    return bytes(pdf.output())


def html_bytes(blocks: Sequence[Block], charset: str = "utf-8") -> bytes:
    from html import escape

    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h2>{escape(block.text)}</h2>")
        elif isinstance(block, Table):
            rows = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>" for row in block.rows)
            body.append(f"<table>{rows}</table>")
        else:
            body.append(f"<p>{escape(block)}</p>")
    page = (f'<html><head><meta charset="{charset}"><style>p {{ margin: 0 }}</style>'
            f"<script>var x = 1;</script></head><body>{''.join(body)}</body></html>")
    return page.encode(charset, "xmlcharrefreplace")


def _rtf_escape(text: str) -> str:
    out: list[str] = []
    for ch in text:
        if ch in "\\{}":
            out.append("\\" + ch)
        elif ord(ch) < 128:
            out.append(ch)
        else:
            try:
                out.append(f"\\'{ch.encode('cp1252')[0]:02x}")
            except UnicodeEncodeError:
                out.append(f"\\u{ord(ch)}?")
    return "".join(out)


def rtf_bytes(blocks: Sequence[Block]) -> bytes:
    """RTF as WordPad writes it: font table, \\'hh escapes for cp1252, \\uN for the rest."""
    lines = [r"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fnil\fcharset0 Calibri;}}",
             r"{\*\generator Riched20 10.0.19041}\viewkind4\uc1"]
    for block in blocks:
        text = blocks_to_text([block])
        lines.append(r"\pard\f0\fs22 " + _rtf_escape(text).replace("\n", r"\par ") + r"\par")
    lines.append("}")
    return "\r\n".join(lines).encode("ascii")
