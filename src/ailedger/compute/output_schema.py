"""The output schema a compute-to-data job declares in its ``job.toml``.

An aggregate-only dataset releases only values whose place the job declared in advance,
so no key of a release is ever text chosen at run time (a key such as
``MRN-12345_Smith_1977-03-02_KMT2D`` cannot come out). The schema lives in ``job.toml``,
which the bundle hash covers: the owner who allows the algorithm by its hash has reviewed
the exact places it may fill. ::

    [output]
    counts = ["stats.json:patients", "stats.json:by_gene.KMT2D"]
    statistics = { "stats.json:mean_year_of_birth" = "stats.json:patients" }

A *place* is ``FILE:KEY.KEY...``: a top-level ``.json`` file and the path of object keys to
one number in it. ``counts`` are cell counts (whole numbers of records); ``statistics`` map
each other released number (a mean, a rate) to the count of the cell it describes, so the
release can suppress it when that cell is smaller than the dataset's minimum cell size.
Names are short identifiers and the number of places is bounded, so the schema itself
cannot carry records either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ailedger.errors import AiledgerError

# One bound for everything a release may hold, all files together (see outputs.py): a
# schema may not declare more places than a release may fill.
MAX_RELEASE_VALUES = 1_000
MAX_KEY_DEPTH = 8
_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}\.json")
_KEY = re.compile(r"[A-Za-z0-9_]{1,32}")
_FIELDS = {"counts", "statistics"}


class OutputSchemaError(AiledgerError):
    """The ``[output]`` table of a ``job.toml`` is malformed; the message says how."""


@dataclass(frozen=True)
class OutputSchema:
    """The places a job may fill in an aggregate-only release (``FILE:KEY.KEY`` strings)."""

    counts: frozenset[str]
    statistics: tuple[tuple[str, str], ...]  # (statistic, the count of its cell), sorted

    @property
    def files(self) -> frozenset[str]:
        return frozenset(place.split(":", 1)[0] for place in self.places)

    @property
    def places(self) -> frozenset[str]:
        return self.counts | {statistic for statistic, _ in self.statistics}

    def cell_of(self, statistic: str) -> str:
        return dict(self.statistics)[statistic]


def place(file: str, keys: tuple[str, ...]) -> str:
    """The schema's name for the value at ``keys`` in ``file``."""
    return f"{file}:{'.'.join(keys)}"


def is_key(name: str) -> bool:
    """Whether ``name`` may be one key of a place (so a key holding a dot cannot pass for
    two nested keys of a declared place)."""
    return _KEY.fullmatch(name) is not None


def _check_place(text: object, field: str) -> str:
    if not isinstance(text, str):
        raise OutputSchemaError(f"{field}: each place must be a string like 'stats.json:count'")
    file, sep, path = text.partition(":")
    keys = path.split(".")
    if not sep or not _FILE.fullmatch(file):
        raise OutputSchemaError(
            f"{field}: {text[:80]!r} must start with a top-level file name ending in .json "
            "(letters, digits, _ and -) and a colon"
        )
    if len(keys) > MAX_KEY_DEPTH or not all(_KEY.fullmatch(k) for k in keys):
        raise OutputSchemaError(
            f"{field}: {text[:80]!r} must name 1 to {MAX_KEY_DEPTH} keys joined by dots, "
            "each 1-32 letters, digits or _"
        )
    return text


def parse_output_schema(table: dict[str, Any]) -> OutputSchema:
    """Validate the ``[output]`` table; raises :class:`OutputSchemaError`."""
    unknown = sorted(set(table) - _FIELDS)
    if unknown:
        raise OutputSchemaError(
            f"unknown field {unknown[0]!r}; allowed: {', '.join(sorted(_FIELDS))}"
        )
    counts_raw = table.get("counts", [])
    stats_raw = table.get("statistics", {})
    if not isinstance(counts_raw, list):
        raise OutputSchemaError("counts must be a list of places like 'stats.json:patients'")
    if not isinstance(stats_raw, dict):
        raise OutputSchemaError(
            "statistics must be a table of quoted places, each naming the count of its cell: "
            '{ "stats.json:mean_age" = "stats.json:patients" }'
        )
    if not counts_raw:
        raise OutputSchemaError("counts must declare at least one cell count")
    if len(counts_raw) + len(stats_raw) > MAX_RELEASE_VALUES:
        raise OutputSchemaError(
            f"declares {len(counts_raw) + len(stats_raw)} places; "
            f"a release holds at most {MAX_RELEASE_VALUES} values"
        )
    counts = [_check_place(c, "counts") for c in counts_raw]
    if len(set(counts)) != len(counts):
        raise OutputSchemaError("counts lists a place twice")
    statistics: list[tuple[str, str]] = []
    for statistic, cell in stats_raw.items():
        _check_place(statistic, "statistics")
        if not isinstance(cell, str) or cell not in counts:
            raise OutputSchemaError(
                f"statistics: {statistic!r} must name one of the declared counts as its cell"
            )
        if statistic in counts:
            raise OutputSchemaError(f"statistics: {statistic!r} is declared as a count too")
        statistics.append((statistic, cell))
    _refuse_nested_places([*counts, *(s for s, _ in statistics)])
    return OutputSchema(frozenset(counts), tuple(sorted(statistics)))


def _refuse_nested_places(places: list[str]) -> None:
    # A place is one number: a place inside another would make that one an object.
    every = set(places)
    for p in places:
        file, _, path = p.partition(":")
        keys = path.split(".")
        for depth in range(1, len(keys)):
            if place(file, tuple(keys[:depth])) in every:
                raise OutputSchemaError(
                    f"{p!r} lies inside {place(file, tuple(keys[:depth]))!r}, "
                    "which is declared as a number"
                )
