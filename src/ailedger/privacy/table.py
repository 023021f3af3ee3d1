"""The owner's plaintext CSV, read under a declared schema.

Differential privacy needs bounds fixed *before* looking at the data: a sum's sensitivity
is its largest possible contribution, a histogram's keys must not depend on which values
occur. So every column a query or training run touches is declared (:class:`Column`):
numbers with ``lower``/``upper`` bounds, categories with their full list.

Reading is a per-row transformation, so adding or removing a row adds or removes exactly
one row of output (stability 1), and nothing raw is ever passed on:

* numbers are clamped into ``[lower, upper]``; an empty, unparseable or non-finite cell
  becomes ``lower`` (a fixed, public default: its presence is accounted like any value);
* a category not in the declared list, or an empty cell, becomes ``None``: it is counted by
  no histogram and belongs to no group, and its text is never released.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ailedger.privacy.errors import QueryError

KINDS = ("int", "float", "category")
MAX_CATEGORIES = 50
MAX_ABS_BOUND = 1e12
MAX_NAME_LENGTH = 64


@dataclass(frozen=True)
class Column:
    """A declared column: numbers with bounds, or categories with their full list."""

    name: str
    kind: str
    lower: float = 0.0
    upper: float = 0.0
    categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not 0 < len(self.name) <= MAX_NAME_LENGTH:
            raise QueryError(f"a column name is text of 1 to {MAX_NAME_LENGTH} characters")
        if self.kind not in KINDS:
            raise QueryError(f"column {self.name!r}: type must be one of {', '.join(KINDS)}")
        if self.kind == "category":
            self._check_categories()
        else:
            self._check_bounds()

    def _check_bounds(self) -> None:
        for bound in (self.lower, self.upper):
            if isinstance(bound, bool) or not isinstance(bound, int | float):
                raise QueryError(f"column {self.name!r}: lower and upper must be numbers")
            if not (math.isfinite(bound) and abs(bound) <= MAX_ABS_BOUND):
                raise QueryError(
                    f"column {self.name!r}: bounds must be finite, at most {MAX_ABS_BOUND:g}"
                )
        if self.kind == "int" and not all(float(b).is_integer() for b in (self.lower, self.upper)):
            raise QueryError(f"column {self.name!r}: an int column has integer bounds")
        if not self.lower < self.upper:
            raise QueryError(f"column {self.name!r}: lower must be below upper")
        if self.categories:
            raise QueryError(f"column {self.name!r}: only a category column lists categories")

    def _check_categories(self) -> None:
        cats = self.categories
        if not isinstance(cats, tuple) or not all(isinstance(c, str) and c for c in cats):
            raise QueryError(f"column {self.name!r}: categories are non-empty texts")
        if not 1 <= len(cats) <= MAX_CATEGORIES or len(set(cats)) != len(cats):
            raise QueryError(
                f"column {self.name!r}: list 1 to {MAX_CATEGORIES} distinct categories"
            )

    @property
    def numeric(self) -> bool:
        return self.kind != "category"

    def convert(self, text: str) -> Any:
        """One cell, clamped or mapped as the module docstring says."""
        if not self.numeric:
            return text if text in self.categories else None
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            value = self.lower
        value = min(max(value, self.lower), self.upper)
        return round(value) if self.kind == "int" else value


def parse_column(name: Any, raw: Any) -> Column:
    """A :class:`Column` from its JSON declaration, e.g. ``{"type": "int", "lower": 0,
    "upper": 120}`` or ``{"type": "category", "categories": ["F", "M"]}``."""
    if not isinstance(name, str):
        raise QueryError(f"column names are texts, got {name!r}")
    if not isinstance(raw, dict):
        raise QueryError(f"column {name!r}: declare it as an object with a 'type'")
    kind = raw.get("type")
    expected = {"type", "categories"} if kind == "category" else {"type", "lower", "upper"}
    if kind not in KINDS or set(raw) != expected:
        raise QueryError(
            f"column {name!r}: write {{'type': 'int'|'float', 'lower': L, 'upper': U}}"
            f" or {{'type': 'category', 'categories': [...]}}"
        )
    if kind == "category":
        categories = raw["categories"]
        if not isinstance(categories, list):
            raise QueryError(f"column {name!r}: categories must be a list")
        return Column(name, "category", categories=tuple(categories))
    return Column(name, kind, lower=raw["lower"], upper=raw["upper"])


def _convert_all(column: Column, texts: list[str]) -> list[Any]:
    """:meth:`Column.convert` over a whole column; numbers parsed by numpy when every
    cell is a number (the common case, ten times faster), else cell by cell."""
    if not column.numeric:
        return [column.convert(text) for text in texts]
    try:
        values = np.array(texts, dtype=np.float64)
    except ValueError:
        return [column.convert(text) for text in texts]
    values[~np.isfinite(values)] = column.lower
    values = np.clip(values, column.lower, column.upper)
    if column.kind == "int":
        return list(np.rint(values).astype(np.int64).tolist())
    return list(values.tolist())


def read_columns(
    path: Path, columns: Sequence[Column], max_rows: int = 1_000_000
) -> dict[str, list[Any]]:
    """The declared columns of the CSV at ``path`` (header row first), converted cell by
    cell; raises :class:`QueryError` if a declared column is missing or the file holds
    more than ``max_rows`` rows."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise QueryError(f"{path.name} is empty; it needs a header row")
            index = {name: i for i, name in enumerate(header)}
            missing = [c.name for c in columns if c.name not in index]
            if missing:
                raise QueryError(
                    f"{path.name} has no column {missing[0]!r}; its header is {header[:20]}"
                )
            texts: dict[str, list[str]] = {c.name: [] for c in columns}
            wanted = [(index[c.name], texts[c.name]) for c in columns]
            for n, row in enumerate(reader):
                if n >= max_rows:
                    raise QueryError(f"{path.name} has more than {max_rows} rows")
                for i, out in wanted:
                    out.append(row[i] if i < len(row) else "")
            return {c.name: _convert_all(c, texts[c.name]) for c in columns}
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise QueryError(f"cannot read {path}: {exc}") from None
