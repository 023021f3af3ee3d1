"""A job's output: what is hashed, what is released, and the exit record beside it.

The output of a run is the sandbox's ``output/`` directory plus ``ailedger-exit.json``
(exit code and stop reason; nothing machine-specific such as timings), so providers that
ran the same deterministic job produce byte-identical trees and the same hash. The hash
(:func:`output_hash`) covers sorted relative paths, sizes and bytes, like the bundle hash,
under its own domain so a bundle can never pass for an output.

Compute-to-data jobs release their output only through the dataset's output policy
(:func:`apply_output_policy`): a size cap, an aggregate-only shape check, and optional
Laplace noise. The check fails closed: anything it cannot prove aggregate is withheld and
the exit record says why, so the requester still gets a verdict it can pay for or dispute.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.compute.jobs import bundle_files, tree_hash
from ailedger.errors import AiledgerError
from ailedger.untrusted_json import parse_untrusted

EXIT_FILE = "ailedger-exit.json"
# Aggregate-only outputs: JSON of numbers under short keys, bounded in size, so a job
# cannot smuggle records out as text or as one enormous "histogram".
MAX_AGGREGATE_ARRAY = 1_000
MAX_AGGREGATE_NUMBERS = 10_000
_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


class OutputPolicyViolation(AiledgerError):
    """The output does not satisfy the dataset's output policy; the text says how."""


@dataclass(frozen=True)
class ReleaseRules:
    """What a dataset owner lets out of a compute-to-data job."""

    max_output_bytes: int
    aggregate_only: bool
    dp_epsilon: float | None = None


def output_hash(root: Path) -> bytes:
    """sha256 over sorted (path, size, bytes) of every file under ``root``."""
    return tree_hash(root, b"ailedger-output-v1")


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


def apply_output_policy(root: Path, rules: ReleaseRules) -> None:
    """Make ``root`` releasable under ``rules`` in place, or raise
    :class:`OutputPolicyViolation` (the caller then withholds the whole output)."""
    files = bundle_files(root)  # also refuses links and special files
    size = sum(path.stat().st_size for _, path in files)
    if size > rules.max_output_bytes:
        raise OutputPolicyViolation(
            f"output is {size} bytes; the dataset allows at most {rules.max_output_bytes}"
        )
    if not rules.aggregate_only:
        return
    for rel, path in files:
        if rel == EXIT_FILE:  # the provider's exit record, not the job's output
            continue
        if not rel.endswith(".json"):
            raise OutputPolicyViolation(
                f"{rel}: aggregate-only datasets release only .json files of numbers"
            )
        try:
            value = parse_untrusted(path.read_text("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise OutputPolicyViolation(f"{rel}: not valid JSON ({exc})") from None
        count = _check_aggregate(value, rel, 0)
        if count > MAX_AGGREGATE_NUMBERS:
            raise OutputPolicyViolation(
                f"{rel}: {count} numbers; aggregates hold at most {MAX_AGGREGATE_NUMBERS}"
            )
        if rules.dp_epsilon:
            noisy = _add_laplace(value, 1.0 / rules.dp_epsilon)
            path.write_text(json.dumps(noisy, sort_keys=True) + "\n")


def _check_aggregate(value: Any, where: str, depth: int) -> int:
    """Count the numbers in ``value``; raise if it holds anything but numbers under keys."""
    if depth > 8:
        raise OutputPolicyViolation(f"{where}: nested deeper than 8 levels")
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int | float):
        try:  # NaN, Infinity, and integers too large for a float (noise could not apply)
            finite = math.isfinite(float(value))
        except OverflowError:
            finite = False
        if not finite:
            raise OutputPolicyViolation(f"{where}: {str(value)[:40]} is not a finite number")
        return 1
    if isinstance(value, list):
        if len(value) > MAX_AGGREGATE_ARRAY:
            raise OutputPolicyViolation(
                f"{where}: an array of {len(value)} values (at most {MAX_AGGREGATE_ARRAY})"
            )
        if any(isinstance(v, dict | list) for v in value):
            raise OutputPolicyViolation(f"{where}: arrays may hold numbers only")
        return sum(_check_aggregate(v, where, depth + 1) for v in value)
    if isinstance(value, dict):
        total = 0
        for key, item in value.items():
            if not _KEY.fullmatch(key):
                raise OutputPolicyViolation(f"{where}: key {key[:40]!r} is not a short name")
            total += _check_aggregate(item, f"{where}:{key}", depth + 1)
        return total
    raise OutputPolicyViolation(f"{where}: text values are not aggregates ({str(value)[:40]!r})")


def _laplace(scale: float) -> float:
    # Inverse CDF from a uniform in (-0.5, 0.5), drawn from the OS so noise is unpredictable.
    u = (secrets.randbits(53) + 0.5) / (1 << 53) - 0.5
    return -scale * math.copysign(1.0, u) * math.log(1 - 2 * abs(u))


def _add_laplace(value: Any, scale: float) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return value + _laplace(scale)
    if isinstance(value, list):
        return [_add_laplace(v, scale) for v in value]
    return {k: _add_laplace(v, scale) for k, v in value.items()}


def withhold(root: Path, reason: str) -> None:
    """Replace everything in ``root`` with an exit record saying why it was withheld."""
    for entry in list(root.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            os.unlink(entry)
    write_exit_record(root, None, f"withheld: {reason}")
