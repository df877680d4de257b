"""Server-side SVG: the tile map of the regions coloured by dossier status, and bar charts.

Every text is escaped here (``markupsafe.escape``): the result is inserted in the page as markup.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# (column, row) of each region's tile: its approximate place; overseas regions on the last row.
TILES: dict[int, dict[str, tuple[int, int]]] = {
    2014: {
        "31": (3, 0),
        "25": (1, 1), "23": (2, 1), "22": (3, 1), "21": (4, 1), "41": (5, 1), "42": (6, 1),
        "53": (0, 2), "52": (1, 2), "24": (2, 2), "11": (3, 2), "26": (4, 2), "43": (5, 2),
        "54": (1, 3), "74": (2, 3), "83": (3, 3), "82": (4, 3),
        "72": (1, 4), "73": (2, 4), "91": (3, 4), "93": (4, 4), "94": (5, 5),
        "01": (0, 7), "02": (1, 7), "03": (2, 7), "04": (3, 7), "06": (4, 7),
    },
    2016: {
        "32": (3, 0),
        "53": (0, 1), "28": (1, 1), "11": (2, 1), "44": (3, 1),
        "52": (0, 2), "24": (1, 2), "27": (2, 2),
        "75": (0, 3), "84": (2, 3),
        "76": (1, 4), "93": (2, 4), "94": (3, 5),
        "01": (0, 7), "02": (1, 7), "03": (2, 7), "04": (3, 7), "06": (4, 7),
    },
}
# Fill and text colours per status (DSFR palette: success, warning, error, grey, info).
COLOURS = {
    "complete": ("#b8fec9", "#18753c"),
    "incomplete": ("#feecc2", "#716043"),
    "rejected": ("#ffe9e6", "#ce0500"),
    "missing": ("#eeeeee", "#3a3a3a"),
    "exempt": ("#e8edff", "#0063cb"),
}
TILE_W, TILE_H, GAP = 100, 72, 6


@dataclass(frozen=True)
class Tile:
    code: str
    name: str
    status: str  # a key of COLOURS
    word: str  # the status in French, shown on the tile: "complet"
    label: str  # the accessible name, starting with the visible text: "Bretagne complet, 12 jours de retard"
    href: str


def _lines(name: str, width: int = 13) -> list[str]:
    """The name cut into lines after a space or a hyphen; joined back, the lines give the name exactly
    (the visible text of a tile is part of its accessible name)."""
    pieces = re.findall(r"[^ -]+[ -]?|[ -]", name)
    lines, line = [], ""
    for piece in pieces:
        if line and len(line + piece.rstrip()) > width:
            lines.append(line)
            line = piece
        else:
            line += piece
    lines.append(line)
    return lines


def tile_map(tiles: Sequence[Tile], geography: int, title: str) -> Markup:
    places = TILES.get(geography, TILES[2016])
    spare = iter((5 + c, 7) for c in range(20))
    columns = max(c for c, _ in places.values()) + 1
    rows = max(r for _, r in places.values()) + 1
    width, height = columns * (TILE_W + GAP), (rows + 1) * (TILE_H + GAP)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" aria-labelledby="carte-titre" class="carte-regions">'
             f'<title id="carte-titre">{escape(title)}</title>',
             f'<text x="0" y="{7 * (TILE_H + GAP) - 10}" font-size="13" fill="#3a3a3a">Outre-mer</text>']
    for tile in tiles:
        col, row = places.get(tile.code) or next(spare)
        x, y = col * (TILE_W + GAP), row * (TILE_H + GAP)
        fill, ink = COLOURS.get(tile.status, COLOURS["missing"])
        lines = _lines(tile.name)
        top = y + 18 + (3 - len(lines)) * 6
        text = "".join(
            f'<tspan x="{x + TILE_W / 2:.0f}" {"y" if i == 0 else "dy"}="{top if i == 0 else 14}">'
            f'{escape(line)}</tspan>' for i, line in enumerate(lines))
        text += (f'<tspan x="{x + TILE_W / 2:.0f}" y="{y + TILE_H - 8}" font-size="10" font-style="italic">'
                 f' {escape(tile.word)}</tspan>')
        parts.append(
            f'<a href="{escape(tile.href)}" aria-label="{escape(tile.label)}">'
            f'<rect x="{x}" y="{y}" width="{TILE_W}" height="{TILE_H}" rx="6" fill="{fill}" stroke="{ink}" '
            f'stroke-width="2"/>'
            f'<text text-anchor="middle" font-size="11" fill="{ink}">{text}</text></a>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(bars: Sequence[tuple[str, float | None, str]], title: str, unit: str = "",
              scale: float | None = None) -> Markup:
    """Horizontal bars: (label, value or None, shown text), one per line, scaled on ``scale`` (100 for
    percentages) or on the largest value."""
    label_w, bar_w, line_h = 230, 360, 24
    height = line_h * len(bars) + 10
    top = scale or max((abs(v) for _, v, _ in bars if v is not None), default=0.0) or 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {label_w + bar_w + 120} {height}" '
             f'width="100%" role="img" aria-labelledby="graphique-titre" class="graphique">'
             f'<title id="graphique-titre">{escape(title)}</title>']
    for i, (label, value, shown) in enumerate(bars):
        y = 5 + i * line_h
        parts.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" font-size="12" '
                     f'fill="#161616">{escape(label[:34])}</text>')
        if value is not None:
            w = max(1.0, bar_w * abs(value) / top)
            parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{line_h - 8}" fill="#000091"/>')
            parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 16}" font-size="12" fill="#161616">'
                         f'{escape(shown)}{escape(unit)}</text>')
        else:
            parts.append(f'<text x="{label_w + 4}" y="{y + 16}" font-size="12" fill="#666">'
                         f'{escape(shown or "pas de valeur")}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
