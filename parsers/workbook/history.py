"""Year over year: a return compared with the region's accepted return of the previous campaign.

Pure: the previous values come in (:class:`PreviousReturn`, one per region the current region
continues: itself, or its predecessors across the 2016 merger), warnings go out. Each rule is a
small function ``(History) -> Iterable[Issue]``; :data:`RULES` lists them in the order they run.
Every comparison of figures is a warning: it never rejects a return. The one error is the
template pre-filled with last year's observations sent back with no result at all (the blank
template in another guise). The thresholds are pinned in docs/value-rules.md (« D'une année sur
l'autre »).

A merged region is compared with its predecessors: counts are summed (only when every predecessor
has a figure, a partial sum means nothing), percentages are shown side by side and never averaged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from parsers.issues import make_issue
from parsers.model import Indicator, Issue, Value, WorkbookReturn
from parsers.reference.catalogue import indicators
from parsers.text import one_line

LABEL_LENGTH = 60
COUNT_FACTOR = 3  # a count multiplied or divided by more than this is a jump...
COUNT_FLOOR = 10  # ...when the larger of the two figures is at least this (small counts move freely)
PERCENT_POINTS = 30  # a percentage further than this from every previous one is a jump
REPEAT_FLOOR = 20  # a count this large repeated exactly is suspicious (small counts repeat naturally)
IDENTICAL_MIN = 3  # a table is "identical to last year's" only when it holds at least this many figures

_SPACE = " "  # make_issue collapses every white space, a non-breaking one too


@dataclass(frozen=True)
class PreviousReturn:
    """One region's last accepted workbook of the previous campaign, as the store keeps it."""

    region: str  # the region's name, as messages show it
    year: int  # the year that return reviewed
    values: Mapping[str, object]  # indicator id -> stored value (a count pair may be a JSON list)
    observations: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class History:
    current: WorkbookReturn
    previous: tuple[PreviousReturn, ...]  # the regions that returned, in their formed_from order
    expected: int = 1  # how many regions the current one continues (3 for Grand Est)
    year: int | None = None  # the year under review now
    catalogue: tuple[Indicator, ...] = field(default_factory=indicators)

    @property
    def previous_year(self) -> int | None:
        return self.previous[0].year if self.previous else None

    @property
    def complete(self) -> bool:
        """Every region the current one continues has a previous return (counts may be summed)."""
        return len(self.previous) == self.expected

    def local(self) -> Iterable[Indicator]:
        return (i for i in self.catalogue if i.is_local)

    def counted(self) -> Iterable[Indicator]:
        return (i for i in self.local() if i.unit in ("count", "count_pair"))

    def now(self, ident: str) -> Value:
        entry = self.current.entries.get(ident)
        return None if entry is None else entry.value

    def cell(self, ident: str) -> str | None:
        entry = self.current.entries.get(ident)
        return None if entry is None else entry.value_cell


Rule = Callable[[History], Iterable[Issue]]


def stored(value: object) -> Value:
    """A value as the store keeps it (JSON: a pair is a list) back to a normalised value."""
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        return value
    return None


def same_table(h: History) -> Iterable[Issue]:
    """Every local figure equal to one previous return's (at least IDENTICAL_MIN figures)."""
    twin = _identical_to(h)
    if twin is not None:
        figures = sum(1 for i in h.local() if h.now(i.id) is not None)
        yield make_issue("same_table_as_last_year", sheet=h.current.sheet, file=h.current.file, count=figures,
                         previous_year=twin.year, region=twin.region, year=h.year or "cette année")


def repeated_count(h: History) -> Iterable[Issue]:
    """A count of REPEAT_FLOOR or more exactly equal to last year's (sum of the predecessors')."""
    if _identical_to(h) is not None or not h.complete:
        return  # one warning for the whole table says it all
    for ind in h.counted():
        now, before = _counts(h.now(ind.id)), _previous_counts(h, ind.id)
        if now is None or before is None or now != before or sum(now) < REPEAT_FLOOR:
            continue
        yield _issue(h, "same_as_last_year", ind, detail=_parenthesis(_detail(h, ind.id)))


def count_jump(h: History) -> Iterable[Issue]:
    """A count multiplied or divided by more than COUNT_FACTOR (a pair: either of its numbers)."""
    if not h.complete:
        return
    for ind in h.counted():
        now, before = _counts(h.now(ind.id)), _previous_counts(h, ind.id)
        if now is None or before is None or len(now) != len(before):
            continue
        jumps = [(n, b) for n, b in zip(now, before, strict=True) if _jumped(n, b)]
        if not jumps:
            continue
        n, b = jumps[0]
        yield _issue(h, "count_jump", ind, before=_shown(before),
                     change=_parenthesis(_detail(h, ind.id), _factor(n, b)))


def percent_jump(h: History) -> Iterable[Issue]:
    """A percentage more than PERCENT_POINTS points away from every previous one (never averaged)."""
    for ind in h.local():
        now = h.now(ind.id)
        if ind.unit != "percent" or not isinstance(now, int | float):
            continue
        before = [(p.region, v) for p in h.previous if isinstance(v := stored(p.values.get(ind.id)), int | float)]
        if not before or all(abs(now - v) <= PERCENT_POINTS for _, v in before):
            continue
        if len(h.previous) == 1 and h.expected == 1:
            shown = _shown(before[0][1], "percent")
        else:
            shown = ", ".join(f"{region} {_shown(v, 'percent')}" for region, v in before)
        yield _issue(h, "percent_jump", ind, before=shown, points=PERCENT_POINTS)


def carried_over(h: History) -> Iterable[Issue]:
    """The template pre-filled with last year's observations sent back without its results: the only
    error of this module (it is the blank template sent back, ``empty_return``, in another guise).
    Some rows only: a warning on each row with no figure typed and last year's observation unchanged."""
    rows = _carried_rows(h)
    if not rows:
        return
    local = [h.current.entries[i.id] for i in h.local() if i.id in h.current.entries]
    noted = [e for e in local if e.observation]
    if not any(_typed(e.raw) for e in local) and len(noted) == len(rows):  # nothing of this year's own
        yield make_issue("carried_template_unfilled", sheet=h.current.sheet, file=h.current.file,
                         previous_year=h.previous_year, year=h.year or "cette année")
        return
    for ind in rows:
        yield _issue(h, "carried_observation", ind, year=h.year or "cette année")


RULES: tuple[Rule, ...] = (same_table, repeated_count, count_jump, percent_jump, carried_over)


def compare(current: WorkbookReturn, previous: Sequence[PreviousReturn], *, expected: int = 1,
            year: int | None = None, rules: tuple[Rule, ...] = RULES) -> list[Issue]:
    """The warnings of comparing ``current`` with ``previous`` (empty when there is nothing to compare)."""
    if not previous:
        return []
    history = History(current=current, previous=tuple(previous), expected=expected, year=year)
    return [issue for rule in rules for issue in rule(history)]


def carried_observations(previous: Sequence[PreviousReturn], *, merged: bool = False) -> dict[str, str]:
    """Last year's observations as the starting point of this year's template: one region's as they
    were; a merged region's (``merged``) one line per predecessor, each after its name."""
    carried: dict[str, list[str]] = {}
    for p in previous:
        for ident, text in p.observations.items():
            if isinstance(text, str) and text.strip():
                shown = f"{p.region} : {text.strip()}" if merged else text.strip()
                carried.setdefault(ident, []).append(shown)
    return {ident: "\n".join(texts) for ident, texts in carried.items()}


# ---------------------------------------------------------------------- helpers


def _carried_rows(h: History) -> list[Indicator]:
    """Local rows with nothing typed as a result and, as observation, last year's as the template
    carried it (spacing aside)."""
    carried = {k: " ".join(v.split()) for k, v in carried_observations(h.previous, merged=h.expected > 1).items()}
    rows = []
    for ind in h.local():
        entry = h.current.entries.get(ind.id)
        if entry is None or _typed(entry.raw) or not entry.observation:
            continue
        if ind.id in carried and " ".join(entry.observation.split()) == carried[ind.id]:
            rows.append(ind)
    return rows


def _identical_to(h: History) -> PreviousReturn | None:
    local = [i.id for i in h.local()]
    if sum(1 for i in local if h.now(i) is not None) < IDENTICAL_MIN:
        return None
    for p in h.previous:
        if all(_equal(h.now(i), stored(p.values.get(i))) for i in local):
            return p
    return None


def _typed(raw: object) -> bool:
    """Something was typed in the result cell (a figure, « NC »...)."""
    return raw is not None and not (isinstance(raw, str) and not raw.strip())


def _equal(a: Value, b: Value) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return a == b


def _counts(value: Value) -> tuple[int, ...] | None:
    if isinstance(value, tuple):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, float) and value.is_integer():
        return (int(value),)
    return None


def _previous_counts(h: History, ident: str) -> tuple[int, ...] | None:
    """The predecessors' counts summed (None unless every one has a figure of the same shape)."""
    found = [_counts(stored(p.values.get(ident))) for p in h.previous]
    if not found or any(f is None for f in found) or len({len(f) for f in found if f is not None}) != 1:
        return None
    counts = [f for f in found if f is not None]
    return tuple(sum(parts) for parts in zip(*counts, strict=True))


def _detail(h: History, ident: str) -> str:
    """A merged region's previous figures one by one ("Alsace 100 + Lorraine 110")."""
    if len(h.previous) == 1 and h.expected == 1:
        return ""
    parts = []
    for p in h.previous:
        counts = _counts(stored(p.values.get(ident)))
        parts.append(f"{p.region} {_shown(counts)}" if counts is not None else p.region)
    return " + ".join(parts)


def _jumped(now: int, before: int) -> bool:
    if max(now, before) < COUNT_FLOOR:
        return False
    if now == 0 or before == 0:
        return True
    return now > COUNT_FACTOR * before or before > COUNT_FACTOR * now


def _factor(now: int, before: int) -> str:
    if now == 0 or before == 0:
        return ""
    ratio, sign = (now / before, "×") if now > before else (before / now, "÷")
    return f"{sign}{_decimal(round(ratio, 1))}"


def _parenthesis(*parts: str) -> str:
    shown = " ; ".join(p for p in parts if p)
    return f" ({shown})" if shown else ""


def _issue(h: History, code: str, ind: Indicator, **context: Any) -> Issue:
    return make_issue(code, indicator=ind.id, sheet=h.current.sheet, cell=h.cell(ind.id), file=h.current.file,
                      value=_shown(h.now(ind.id), ind.unit), label=one_line(ind.label, LABEL_LENGTH),
                      previous_year=h.previous_year, **context)


def _shown(value: object, unit: str = "count") -> str:
    """A figure as the messages show it: "1 250", "12,5 %", "12 / 5"."""
    if isinstance(value, tuple):
        return " / ".join(_shown(v) for v in value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = _decimal(value)
        return f"{text}{_SPACE}%" if unit == "percent" else text
    return str(value)


def _decimal(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}".replace(",", _SPACE)
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return text.replace(",", _SPACE).replace(".", ",")
