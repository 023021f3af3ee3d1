"""Differentially private statistics through OpenDP: counts, sums, means, histograms,
quantiles, optionally per group.

A query is JSON, strictly checked by :func:`parse_query`::

    {"columns": {"age": {"type": "int", "lower": 0, "upper": 120},
                 "sex": {"type": "category", "categories": ["F", "M"]}},
     "statistics": [{"kind": "count"},
                    {"kind": "sum", "column": "age"},
                    {"kind": "mean", "column": "age"},
                    {"kind": "histogram", "column": "sex"},
                    {"kind": "quantile", "column": "age", "q": 0.5}],
     "group_by": "sex",
     "epsilon": 1.0}

``columns`` declares every column read (see :mod:`.table`); ``group_by`` (optional) names a
declared category column. The result's keys are ``count``, ``sum_<col>``, ``mean_<col>``,
``histogram_<col>`` (one count per declared category) and ``quantile_<col>_<q>``, nested
under each declared category of ``group_by`` when it is set; no other key is ever released.

Privacy (neighbouring datasets differ by adding or removing one row):

* ``epsilon`` is split evenly across the statistics; every noise draw is OpenDP's (discrete
  Laplace for integers, its float Laplace for floats, report-noisy-max for quantiles over
  a fixed grid of candidates), never ours, and each charge is OpenDP's own privacy map at
  ``d_in=1``, not our arithmetic.
* A mean is a DP sum over a DP count, each with half the mean's share (the dataset size is
  not public); post-processing clamps it into the column's bounds.
* A histogram over declared categories is one release: adding a row changes one count by 1.
* ``group_by`` over declared categories is parallel composition: each row falls in at most
  one group, so all groups together cost what one group costs.

:func:`plan_charges` builds the same measurements as :func:`run_query`, without data, so
the charges recorded before a run are exactly those the run applies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import opendp.prelude as dp

from ailedger.privacy.charges import Charge, merge_charges
from ailedger.privacy.errors import QueryError
from ailedger.privacy.table import Column, parse_column, read_columns

STATISTICS = ("count", "sum", "mean", "histogram", "quantile")
MAX_STATISTICS = 20
MAX_COLUMNS = 50
MAX_EPSILON = 10.0
QUANTILE_CANDIDATES = 201
"""Grid of candidate answers a quantile chooses from (integers when an int column's range
is that small): fixed by the declared bounds, never by the data."""


@dataclass(frozen=True)
class Statistic:
    """One statistic of a query; ``column`` for all but count, ``q`` for quantiles."""

    kind: str
    column: str | None = None
    q: float | None = None

    @property
    def key(self) -> str:
        """The name of this statistic's value in a result."""
        if self.kind == "count":
            return "count"
        if self.kind == "quantile":
            return f"quantile_{self.column}_{self.q:g}"
        return f"{self.kind}_{self.column}"


@dataclass(frozen=True)
class QuerySpec:
    """A checked query: declared columns, statistics, budget and optional grouping."""

    columns: tuple[Column, ...]
    statistics: tuple[Statistic, ...]
    epsilon: float
    group_by: str | None = None

    def column(self, name: str | None) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise QueryError(f"column {name!r} is not declared; add it under 'columns'")


@dataclass(frozen=True)
class QueryResult:
    """Released values (see the module docstring for keys) and the charges they cost."""

    values: dict[str, Any]
    charges: list[Charge]


def _number(where: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise QueryError(f"{where} must be a number, got {value!r}")
    if not (math.isfinite(value) and low < value <= high):
        raise QueryError(f"{where} must be in ({low:g}, {high:g}], got {value!r}")
    return float(value)


def _parse_statistic(raw: Any, spec_columns: dict[str, Column]) -> Statistic:
    if not isinstance(raw, dict) or raw.get("kind") not in STATISTICS:
        raise QueryError(f"each statistic is an object with 'kind' in {', '.join(STATISTICS)}")
    kind = raw["kind"]
    expected = {"kind"} | ({"column"} if kind != "count" else set())
    expected |= {"q"} if kind == "quantile" else set()
    if set(raw) != expected:
        raise QueryError(f"a {kind} statistic has exactly the fields {sorted(expected)}")
    if kind == "count":
        return Statistic("count")
    column = spec_columns.get(raw["column"]) if isinstance(raw["column"], str) else None
    if column is None:
        raise QueryError(f"{kind} of column {raw['column']!r}: declare it under 'columns'")
    if (kind == "histogram") == column.numeric:
        need = "a category" if kind == "histogram" else "an int or float"
        raise QueryError(f"{kind} of {column.name!r} needs {need} column")
    q = _number("quantile q", raw["q"], -1e-300, 1.0) if kind == "quantile" else None
    return Statistic(kind, column.name, q)


def parse_query(raw: Any) -> QuerySpec:
    """A :class:`QuerySpec` from the JSON shape in the module docstring, or a
    :class:`QueryError` saying what to fix."""
    allowed = {"columns", "statistics", "epsilon", "group_by"}
    if not isinstance(raw, dict) or not {"columns", "statistics", "epsilon"} <= set(raw):
        raise QueryError("a query is an object with 'columns', 'statistics' and 'epsilon'")
    if not set(raw) <= allowed:
        raise QueryError(f"unknown query fields {sorted(set(raw) - allowed)}")
    if not isinstance(raw["columns"], dict) or not 0 < len(raw["columns"]) <= MAX_COLUMNS:
        raise QueryError(f"'columns' declares 1 to {MAX_COLUMNS} columns by name")
    columns = {name: parse_column(name, decl) for name, decl in raw["columns"].items()}
    stats_raw = raw["statistics"]
    if not isinstance(stats_raw, list) or not 0 < len(stats_raw) <= MAX_STATISTICS:
        raise QueryError(f"'statistics' is a list of 1 to {MAX_STATISTICS} statistics")
    statistics = tuple(_parse_statistic(s, columns) for s in stats_raw)
    keys = [s.key for s in statistics]
    if len(set(keys)) != len(keys):
        raise QueryError(f"a statistic is asked twice: {keys}; ask each once")
    epsilon = _number("epsilon", raw["epsilon"], 0.0, MAX_EPSILON)
    group_by = raw.get("group_by")
    if group_by is not None and (
        not isinstance(group_by, str) or group_by not in columns or columns[group_by].numeric
    ):
        raise QueryError(f"group_by {group_by!r} must name a declared category column")
    return QuerySpec(tuple(columns.values()), statistics, epsilon, group_by)


# -- measurements ------------------------------------------------------------------------

_Build = Callable[[float], dp.Measurement]


def epsilon_of(measurement: dp.Measurement) -> float:
    """OpenDP's own privacy map of ``measurement`` for one row added or removed."""
    return float(measurement.map(1))  # type: ignore[no-untyped-call]


def _calibrated(build: _Build, epsilon: float) -> dp.Measurement:
    """``build(scale)`` whose privacy map at d_in=1 is at most ``epsilon``: every mechanism
    used here has epsilon inversely proportional to its scale."""
    # OpenDP's mechanisms beyond its vetted core need this flag; it is process-wide and
    # idempotent, so it is set where measurements are built rather than at import.
    dp.enable_features("contrib")
    scale = epsilon_of(build(1.0)) / epsilon
    measurement = build(scale)
    spent = epsilon_of(measurement)
    if spent > epsilon:  # float rounding in OpenDP's map: widen the noise a hair
        measurement = build(scale * spent / epsilon * (1 + 1e-9))
    return measurement


def _space(column: Column | None) -> Any:
    atom = (
        dp.atom_domain(T=bool)
        if column is None
        else dp.atom_domain(T=str)
        if not column.numeric
        else dp.atom_domain(T="i64")
        if column.kind == "int"
        else dp.atom_domain(T=float, nan=False)
    )
    return dp.vector_domain(atom), dp.symmetric_distance()


def _count(epsilon: float) -> dp.Measurement:
    return _calibrated(
        lambda s: _space(None) >> dp.t.then_count() >> dp.m.then_laplace(scale=s), epsilon
    )


def _sum(column: Column, epsilon: float) -> dp.Measurement:
    cast = int if column.kind == "int" else float
    bounds = (cast(column.lower), cast(column.upper))
    return _calibrated(
        lambda s: (
            _space(column)
            >> dp.t.then_clamp(bounds)
            >> dp.t.then_sum()  # type: ignore[no-untyped-call]
            >> dp.m.then_laplace(scale=s)
        ),
        epsilon,
    )


def _histogram(column: Column, epsilon: float) -> dp.Measurement:
    categories = list(column.categories)
    return _calibrated(
        lambda s: (
            _space(column)
            >> dp.t.then_count_by_categories(categories=categories, null_category=False)
            >> dp.m.then_laplace(scale=s)
        ),
        epsilon,
    )


def quantile_candidates(column: Column) -> list[float]:
    if column.kind == "int" and column.upper - column.lower < QUANTILE_CANDIDATES:
        return [float(v) for v in range(int(column.lower), int(column.upper) + 1)]
    return [float(v) for v in np.linspace(column.lower, column.upper, QUANTILE_CANDIDATES)]


def _quantile(column: Column, q: float, epsilon: float) -> dp.Measurement:
    space = dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.symmetric_distance()
    candidates = quantile_candidates(column)
    return _calibrated(
        lambda s: (
            space >> dp.m.then_private_quantile(dp.max_divergence(), candidates, alpha=q, scale=s)
        ),
        epsilon,
    )


@dataclass(frozen=True)
class _Part:
    """One OpenDP measurement applied to one column (None: to the rows themselves)."""

    column: Column | None
    measurement: dp.Measurement
    as_float: bool = False  # quantiles score float candidates, even over an int column


def _parts(spec: QuerySpec) -> list[tuple[Statistic, list[_Part]]]:
    share = spec.epsilon / len(spec.statistics)
    planned = []
    for stat in spec.statistics:
        column = None if stat.column is None else spec.column(stat.column)
        if stat.kind == "count":
            parts = [_Part(None, _count(share))]
        elif stat.kind == "sum" and column is not None:
            parts = [_Part(column, _sum(column, share))]
        elif stat.kind == "mean" and column is not None:
            parts = [_Part(column, _sum(column, share / 2)), _Part(None, _count(share / 2))]
        elif stat.kind == "histogram" and column is not None:
            parts = [_Part(column, _histogram(column, share))]
        elif stat.kind == "quantile" and column is not None and stat.q is not None:
            parts = [_Part(column, _quantile(column, stat.q, share), as_float=True)]
        else:  # parse_query admits nothing else
            raise QueryError(f"cannot plan statistic {stat}")
        planned.append((stat, parts))
    return planned


def _charges(planned: Sequence[tuple[Statistic, list[_Part]]]) -> list[Charge]:
    return merge_charges(
        [
            Charge("laplace", epsilon=epsilon_of(part.measurement))
            for _, parts in planned
            for part in parts
        ]
    )


def plan_charges(spec: QuerySpec) -> list[Charge]:
    """The charges :func:`run_query` applies for ``spec``, computed without the data."""
    return _charges(_parts(spec))


# -- running -----------------------------------------------------------------------------


def _input(part: _Part, data: dict[str, list[Any]], rows: list[int]) -> Any:
    """The measurement's input: numbers as numpy arrays, which OpenDP copies in one go
    (a list is checked element by element in Python, most of a query's time)."""
    if part.column is None:
        return np.ones(len(rows), dtype=bool)
    values = data[part.column.name]
    if part.column.numeric:
        dtype = np.float64 if part.as_float or part.column.kind == "float" else np.int64
        chosen = values if len(rows) == len(values) else [values[i] for i in rows]
        return np.array(chosen, dtype=dtype)
    return [values[i] for i in rows if values[i] is not None]


def _value(stat: Statistic, spec: QuerySpec, outputs: list[Any]) -> Any:
    if stat.kind == "count":
        return max(0, int(outputs[0]))
    column = spec.column(stat.column)
    if stat.kind == "sum":
        return outputs[0]
    if stat.kind == "mean":
        mean = float(outputs[0]) / max(1, int(outputs[1]))
        return float(min(max(mean, column.lower), column.upper))
    if stat.kind == "histogram":
        return {c: max(0, int(n)) for c, n in zip(column.categories, outputs[0], strict=True)}
    return float(outputs[0])


def _evaluate(
    planned: Sequence[tuple[Statistic, list[_Part]]],
    spec: QuerySpec,
    data: dict[str, list[Any]],
    rows: list[int],
) -> dict[str, Any]:
    values = {}
    for stat, parts in planned:
        outputs = [part.measurement(_input(part, data, rows)) for part in parts]
        values[stat.key] = _value(stat, spec, outputs)
    return values


def run_query(spec: QuerySpec, csv_path: Path) -> QueryResult:
    """Run ``spec`` over the CSV at ``csv_path``; the result holds only released values."""
    planned = _parts(spec)
    data = read_columns(csv_path, spec.columns)
    if spec.group_by is None:
        every = list(range(len(next(iter(data.values())))))
        return QueryResult(_evaluate(planned, spec, data, every), _charges(planned))
    members: dict[str, list[int]] = {c: [] for c in spec.column(spec.group_by).categories}
    for i, key in enumerate(data[spec.group_by]):
        if key is not None:  # an undeclared group: the row is in none
            members[key].append(i)
    grouped = {key: _evaluate(planned, spec, data, rows) for key, rows in members.items()}
    return QueryResult(grouped, _charges(planned))
