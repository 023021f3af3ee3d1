"""A job's output: what is hashed, what is released, and the exit record beside it.

The output of a run is the sandbox's ``output/`` directory plus ``ailedger-exit.json``
(exit code and stop reason; nothing machine-specific such as timings), so providers that
ran the same deterministic job produce byte-identical trees and the same hash. The hash
(:func:`output_hash`) covers sorted relative paths, sizes and bytes, like the bundle hash,
under its own domain so a bundle can never pass for an output.

Compute-to-data jobs release their output only through the dataset's output policy
(:func:`apply_output_policy`), applied *before* the output is hashed, so every provider
hashes the same released tree. The policy is a size cap and, for aggregate-only datasets,
statistical disclosure control: only the places the job's ``[output]`` schema declares
(:mod:`ailedger.compute.output_schema`), numbers only, at most
:data:`MAX_RELEASE_VALUES` values in the whole release, and every count below the
dataset's minimum cell size suppressed (written as ``null``) together with the statistics
of its cell. It is **not** differential privacy and nothing labels it so: a released value
is exact, and differencing across cells or across jobs over overlapping cohorts is not
prevented. Anything the check cannot prove is withheld, and the exit record says why in
words of the policy's own (never text from the job), so the requester still gets a
verdict it can pay for or dispute.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.chain.contracts.compute_policy import DEFAULT_MIN_CELL_SIZE
from ailedger.compute.jobs import bundle_files, tree_hash
from ailedger.compute.output_schema import (
    MAX_KEY_DEPTH,
    MAX_RELEASE_VALUES,
    OutputSchema,
    is_key,
    place,
)
from ailedger.errors import AiledgerError
from ailedger.untrusted_json import parse_untrusted

EXIT_FILE = "ailedger-exit.json"
# How every surface that shows an output policy labels it: the rules bound a release,
# they do not make it private.
NOT_PRIVATE = "not differentially private (use `ailedger privacy query` for private releases)"
# Integers beyond 2**53 do not survive a round trip through a double; a count that large
# is no cohort anyway.
_MAX_EXACT = 2**53


class OutputPolicyViolation(AiledgerError):
    """The output does not satisfy the dataset's output policy; the text says how."""


@dataclass(frozen=True)
class ReleaseRules:
    """What a dataset owner lets out of a compute-to-data job (never a privacy claim)."""

    max_output_bytes: int
    aggregate_only: bool
    min_cell_size: int = DEFAULT_MIN_CELL_SIZE


def output_hash(root: Path, without: Collection[str] = ()) -> bytes:
    """sha256 over sorted (path, size, bytes) of every file under ``root`` (but those at
    the relative paths ``without``)."""
    return tree_hash(root, b"ailedger-output-v1", without)


def write_exit_record(root: Path, exit_code: int | None, reason: str) -> None:
    """Write the exit record, replacing whatever the job itself put at that name."""
    target = root / EXIT_FILE
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()
    target.write_text(json.dumps({"exit_code": exit_code, "reason": reason}, sort_keys=True) + "\n")


def read_exit_record(root: Path) -> dict[str, Any]:
    try:
        record = parse_untrusted((root / EXIT_FILE).read_bytes())
    except (OSError, ValueError):
        return {"exit_code": None, "reason": "no exit record"}
    return record if isinstance(record, dict) else {"exit_code": None, "reason": "bad record"}


def tree_size(root: Path) -> int:
    return sum(path.stat().st_size for _, path in bundle_files(root))


def apply_output_policy(
    root: Path, rules: ReleaseRules, schema: OutputSchema | None = None
) -> tuple[str, ...]:
    """Make ``root`` releasable under ``rules`` in place and return the places suppressed
    below the minimum cell size, or raise :class:`OutputPolicyViolation` (the caller then
    withholds the whole output). ``schema`` is the job's declared ``[output]``."""
    files = bundle_files(root)  # also refuses links and special files
    size = sum(path.stat().st_size for _, path in files)
    if size > rules.max_output_bytes:
        raise OutputPolicyViolation(  # not the exact size: the job chose that number
            f"the output is over the dataset's cap of {rules.max_output_bytes} bytes"
        )
    if not rules.aggregate_only:
        return ()
    if schema is None:
        raise OutputPolicyViolation(
            "the job declares no [output] schema; aggregate-only datasets release only "
            "the counts and statistics a job declares in its job.toml"
        )
    released = _read_release(root, schema)
    suppressed = _suppress_small_cells(released, schema, rules.min_cell_size)
    for file in sorted({f for f, _ in released}):
        tree = _nest({keys: v for (f, keys), v in released.items() if f == file})
        # Rewritten canonically: spacing, key order and number spelling carry nothing.
        (root / file).write_text(json.dumps(tree, sort_keys=True, allow_nan=False) + "\n")
    return suppressed


Released = dict[tuple[str, tuple[str, ...]], int | float | None]


def _read_release(root: Path, schema: OutputSchema) -> Released:
    """Every value of the output by (file, keys), once each is proven a declared number."""
    declared = schema.files
    for entry in sorted(root.iterdir()):
        if entry.name == EXIT_FILE and entry.is_file():
            continue  # the provider's exit record, not the job's output
        # Never name what the job wrote: a file or key name would carry text out.
        if entry.is_dir():
            raise OutputPolicyViolation("the output holds a directory; only declared files")
        if entry.name not in declared:
            raise OutputPolicyViolation("the output holds a file its [output] schema lacks")
    leaves: list[tuple[str, tuple[str, ...], Any]] = []
    for file in sorted(declared):
        if not (root / file).is_file():
            continue  # a declared file may stay empty; its places are then missing
        try:
            document = parse_untrusted((root / file).read_bytes(), MAX_KEY_DEPTH)
        except ValueError:
            raise OutputPolicyViolation(
                f"{file}: not JSON objects nested at most {MAX_KEY_DEPTH} deep"
            ) from None
        if not isinstance(document, dict):
            raise OutputPolicyViolation(f"{file}: must hold one JSON object of declared keys")
        for keys, value in _leaves(document, ()):
            # Counted before anything else, booleans and nulls too, over all files at once.
            if len(leaves) >= MAX_RELEASE_VALUES:
                raise OutputPolicyViolation(
                    f"the release holds more than {MAX_RELEASE_VALUES} values "
                    "(the bound is for all files together)"
                )
            leaves.append((file, keys, value))
    return {(f, keys): _check_value(schema, f, keys, value) for f, keys, value in leaves}


def _leaves(value: dict[str, Any], keys: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    for key, item in value.items():
        if isinstance(item, dict) and item:
            yield from _leaves(item, (*keys, key))
        else:
            yield (*keys, key), item


def _check_value(schema: OutputSchema, file: str, keys: tuple[str, ...], value: Any) -> int | float:
    where = place(file, keys)
    if where not in schema.places or not all(map(is_key, keys)):
        raise OutputPolicyViolation(f"{file}: holds a key its [output] schema does not declare")
    if isinstance(value, bool) or value is None:
        raise OutputPolicyViolation(f"{where}: true, false and null are not aggregates")
    if where in schema.counts:
        if not isinstance(value, int) or not 0 <= value <= _MAX_EXACT:
            raise OutputPolicyViolation(f"{where}: a count must be a whole number 0 .. 2**53")
        return value
    if isinstance(value, int) and abs(value) <= _MAX_EXACT:
        return value
    if not isinstance(value, float) or not math.isfinite(value):
        raise OutputPolicyViolation(f"{where}: a statistic must be a finite number")
    return value


def _suppress_small_cells(released: Released, schema: OutputSchema, floor: int) -> tuple[str, ...]:
    """Null each count below ``floor`` and each statistic whose cell's count is below it or
    missing; returns the places nulled (declared names only)."""
    small = {
        (file, keys)
        for (file, keys), v in released.items()
        if place(file, keys) in schema.counts and (v is None or v < floor)
    }
    for key in released:
        where = place(*key)
        if where in schema.counts:
            continue
        cell_file, _, cell_path = schema.cell_of(where).partition(":")
        cell = (cell_file, tuple(cell_path.split(".")))
        if cell not in released or cell in small:
            small.add(key)
    for key in small:
        released[key] = None
    return tuple(sorted(place(*key) for key in small))


def _nest(flat: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for keys, value in flat.items():
        node = tree
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return tree


def withhold(root: Path, reason: str) -> None:
    """Replace everything in ``root`` with an exit record saying why it was withheld."""
    for entry in list(root.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            os.unlink(entry)
    write_exit_record(root, None, f"withheld: {reason}")
