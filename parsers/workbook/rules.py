"""Validation rules for a located Annexe 2 table: each rule only decides and returns Issues.

A rule is a small function ``(Context) -> Iterable[Issue]``; :data:`RULES` lists them in the
order they run. Every issue names the indicator, sheet and A1 cell, the raw value and carries the
French message of parsers.messages.make_issue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from parsers.issues import make_issue
from parsers.model import Indicator, IndicatorEntry, Issue, Region
from parsers.reference.regions import SUCCESSOR_2016
from parsers.text import one_line
from parsers.workbook.table import Table
from parsers.workbook.values import Normalised

LABEL_LENGTH = 60


@dataclass(frozen=True)
class Context:
    table: Table
    entries: dict[str, IndicatorEntry]  # the first row found for each indicator
    normalised: dict[str, Normalised]
    catalogue: tuple[Indicator, ...]
    file: str
    year: int | None = None  # the campaign's year under review
    strict: bool = False  # missing values are errors rather than warnings
    expected_region: Region | None = None  # the sender's region

    @property
    def sheet(self) -> str:
        return self.table.sheet.name

    @cached_property
    def _by_id(self) -> dict[str, Indicator]:
        return {i.id: i for i in self.catalogue}

    def indicator(self, ident: str) -> Indicator:
        return self._by_id[ident]

    def label(self, ident: str) -> str:
        """The indicator's label as written on the clerk's sheet (the Annexe 2 label if absent)."""
        rows = self.table.matches.get(ident)
        return one_line(rows[0].label if rows and rows[0].label.strip() else self.indicator(ident).label,
                        LABEL_LENGTH)


Rule = Callable[[Context], Iterable[Issue]]


def observations_column(ctx: Context) -> Iterable[Issue]:
    """No "Observations" column: one warning (and no per-row missing_observation)."""
    if ctx.table.columns.observation is None and not _has_meta_observations(ctx):
        yield make_issue("missing_column", severity="warning", sheet=ctx.sheet, file=ctx.file,
                         cell=None, column="Observations", header_row=ctx.table.columns.header_row)


def missing_indicator(ctx: Context) -> Iterable[Issue]:
    """A local indicator's row is absent (national rows may be left out)."""
    maybe = {c for match in ctx.table.ambiguous for c in match.candidates}
    for ind in ctx.catalogue:
        if ind.is_local and ind.id not in ctx.table.matches and ind.id not in maybe:
            yield make_issue("missing_indicator", indicator=ind.id, sheet=ctx.sheet, file=ctx.file,
                             label=ctx.label(ind.id))


def unknown_indicator(ctx: Context) -> Iterable[Issue]:
    for match in ctx.table.unknown:
        yield make_issue("unknown_indicator", sheet=ctx.sheet, cell=match.label_cell, file=ctx.file,
                         value=one_line(match.label, 80), row=match.row)


def ambiguous_indicator(ctx: Context) -> Iterable[Issue]:
    for match in ctx.table.ambiguous:
        yield make_issue("ambiguous_indicator", sheet=ctx.sheet, cell=match.label_cell, file=ctx.file,
                         value=one_line(match.label, 80),
                         candidates=" ou ".join(f"« {one_line(ctx.indicator(c).label, LABEL_LENGTH)} » ({c})"
                                                for c in match.candidates))


def duplicate_indicator(ctx: Context) -> Iterable[Issue]:
    for ident, rows in ctx.table.matches.items():
        if len(rows) > 1:
            yield make_issue("duplicate_indicator", indicator=ident, sheet=ctx.sheet, file=ctx.file,
                             cell=rows[1].label_cell, label=ctx.label(ident),
                             cells=", ".join(r.label_cell for r in rows))


def value_problems(ctx: Context) -> Iterable[Issue]:
    """not_a_number, not_an_integer, out_of_range, cell_error, formula_without_value.

    For a national indicator the figure is only kept for information: its problems are warnings.
    """
    for ident, result in ctx.normalised.items():
        entry = ctx.entries[ident]
        national = not ctx.indicator(ident).is_local
        for problem in result.problems:
            if problem.code == "ambiguous_percent":
                continue
            context: dict[str, Any] = dict(problem.context)
            yield make_issue(problem.code, severity="warning" if national else None, indicator=ident,
                             sheet=ctx.sheet, cell=entry.value_cell, value=result.shown, file=ctx.file,
                             label=ctx.label(ident), unit=ctx.indicator(ident).unit, **context)


def ambiguous_percent(ctx: Context) -> Iterable[Issue]:
    for ident, result in ctx.normalised.items():
        if not ctx.indicator(ident).is_local:
            continue
        for problem in result.problems:
            if problem.code == "ambiguous_percent":
                yield make_issue("ambiguous_percent", indicator=ident, sheet=ctx.sheet, file=ctx.file,
                                 cell=ctx.entries[ident].value_cell, value=result.shown,
                                 label=ctx.label(ident), points=problem.context.get("points"))


def _nothing_filled(ctx: Context) -> bool:
    """Not one local indicator has a figure, a marker or an observation: the table was sent blank."""
    local = [ident for ident in ctx.normalised if ctx.indicator(ident).is_local]
    return bool(local) and all(ctx.normalised[i].empty and not ctx.entries[i].observation for i in local)


def empty_return(ctx: Context) -> Iterable[Issue]:
    """A table with no local figure nor observation at all (the blank template sent back)."""
    if _nothing_filled(ctx):
        yield make_issue("empty_return", sheet=ctx.sheet, file=ctx.file)


def missing_value(ctx: Context) -> Iterable[Issue]:
    """A local indicator with neither figure nor observation (error when ``strict``)."""
    if _nothing_filled(ctx):
        return  # one clear error says it all, not sixteen warnings
    for ident, result in ctx.normalised.items():
        entry = ctx.entries[ident]
        if ctx.indicator(ident).is_local and result.empty and not entry.observation:
            yield make_issue("missing_value", severity="error" if ctx.strict else None, indicator=ident,
                             sheet=ctx.sheet, cell=entry.value_cell, file=ctx.file, label=ctx.label(ident))


def missing_observation(ctx: Context) -> Iterable[Issue]:
    """A local figure (or an "NC") without the observation the notice asks for."""
    for ident, result in ctx.normalised.items():
        entry = ctx.entries[ident]
        if entry.observation_cell is None or entry.observation:
            continue
        if ctx.indicator(ident).is_local and (result.value is not None or result.marker):
            yield make_issue("missing_observation", indicator=ident, sheet=ctx.sheet,
                             cell=entry.observation_cell, value=result.shown, file=ctx.file,
                             label=ctx.label(ident))


def national_indicator(ctx: Context) -> Iterable[Issue]:
    """A national indicator filled in: kept, for information."""
    for ident, result in ctx.normalised.items():
        if not ctx.indicator(ident).is_local and result.value is not None:
            yield make_issue("national_indicator", indicator=ident, sheet=ctx.sheet, file=ctx.file,
                             cell=ctx.entries[ident].value_cell, value=result.shown, label=ctx.label(ident))


def year_mismatch(ctx: Context) -> Iterable[Issue]:
    found = ctx.table.year
    if ctx.year is not None and found is not None and found != ctx.year:
        yield make_issue("year_mismatch", sheet=ctx.sheet, cell=ctx.table.columns.year_cell, file=ctx.file,
                         value=str(found), found=found, expected=ctx.year)


def region_mismatch(ctx: Context) -> Iterable[Issue]:
    expected, found = ctx.expected_region, ctx.table.region
    if expected is not None and found is not None and not same_region(expected, found):
        yield make_issue("region_mismatch", sheet=ctx.sheet, cell=ctx.table.region_cell, file=ctx.file,
                         value=ctx.table.region_text, found=found.name, expected=expected.name)


def region_not_found(ctx: Context) -> Iterable[Issue]:
    if ctx.expected_region is not None and ctx.table.region is None:
        yield make_issue("region_not_found", sheet=ctx.sheet, file=ctx.file, expected=ctx.expected_region.name)


RULES: tuple[Rule, ...] = (
    observations_column,
    missing_indicator,
    unknown_indicator,
    ambiguous_indicator,
    duplicate_indicator,
    value_problems,
    ambiguous_percent,
    empty_return,
    missing_value,
    missing_observation,
    national_indicator,
    year_mismatch,
    region_mismatch,
    region_not_found,
)


def run_rules(ctx: Context, rules: tuple[Rule, ...] = RULES) -> list[Issue]:
    return [issue for rule in rules for issue in rule(ctx)]


def same_region(a: Region, b: Region) -> bool:
    """Same code, or a 2014 region and the 2016 region it merged into."""
    if a.code == b.code:
        return True
    old, new = (a, b) if a.geography == 2014 else (b, a)
    return old.geography == 2014 and new.geography == 2016 and SUCCESSOR_2016.get(old.code) == new.code


def _has_meta_observations(ctx: Context) -> bool:
    return any(m.observation_col for rows in ctx.table.matches.values() for m in rows)
