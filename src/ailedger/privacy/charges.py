"""What one release costs in privacy, and its canonical encoding for the chain.

A :class:`Charge` describes one mechanism's release precisely enough for an accountant to
compose it with every other release on the same dataset:

* ``laplace``: a pure ``epsilon``-DP release (OpenDP's Laplace on integers is the discrete
  Laplace, its report-noisy-max for quantiles is pure DP too). It is accounted as the
  discrete Laplace of sensitivity 1 and parameter ``epsilon``, whose privacy loss is
  exactly +-epsilon: the worst case among all epsilon-DP mechanisms (it is randomized
  response). Accounting it as the *continuous* Laplace would understate the composition
  of discrete releases, so the tighter continuous-Laplace curve is deliberately not used.
* ``gaussian``: a Gaussian mechanism with ``noise_multiplier`` = sigma / L2 sensitivity.
* ``sampled_gaussian``: the same after Poisson sampling each row with probability
  ``sampling_rate`` (one DP-SGD step; Abadi et al. 2016).

``count`` repeats the same release (DP-SGD steps, k statistics of equal epsilon).
:func:`encode_charges` is the canonical JSON one release puts on chain; it is bounded so
that a contract can store it and a reader can parse it cheaply.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dp_accounting import dp_event

from ailedger.privacy.errors import ChargeError
from ailedger.untrusted_json import UnreadableJsonError, parse_untrusted

MECHANISMS = ("laplace", "gaussian", "sampled_gaussian")
MAX_EPSILON = 100.0
"""Largest epsilon one laplace charge may carry: beyond it the release is not private."""
MIN_NOISE_MULTIPLIER = 0.01
MAX_NOISE_MULTIPLIER = 1e4
MAX_COUNT = 10**6
MAX_CHARGES = 64
MAX_ENCODED_BYTES = 2048

_FIELDS = {
    "laplace": ("mechanism", "epsilon", "count"),
    "gaussian": ("mechanism", "noise_multiplier", "count"),
    "sampled_gaussian": ("mechanism", "noise_multiplier", "sampling_rate", "count"),
}


def _finite_number(name: str, value: Any) -> float:
    # bool is an int in Python; "1.0" is text: neither is a number on the wire.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ChargeError(f"charge field {name!r} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ChargeError(f"charge field {name!r} must be finite, got {value!r}")
    return number


@dataclass(frozen=True)
class Charge:
    """One mechanism's release, as the accountant composes it."""

    mechanism: str
    epsilon: float = 0.0
    noise_multiplier: float = 0.0
    sampling_rate: float = 0.0
    count: int = 1

    def __post_init__(self) -> None:
        if self.mechanism not in MECHANISMS:
            raise ChargeError(
                f"unknown mechanism {self.mechanism!r}; use one of {', '.join(MECHANISMS)}"
            )
        if isinstance(self.count, bool) or not isinstance(self.count, int):
            raise ChargeError(f"charge count must be an integer, got {self.count!r}")
        if not 1 <= self.count <= MAX_COUNT:
            raise ChargeError(f"charge count must be in [1, {MAX_COUNT}], got {self.count}")
        used = _FIELDS[self.mechanism]
        for name in ("epsilon", "noise_multiplier", "sampling_rate"):
            value = _finite_number(name, getattr(self, name))
            if name not in used and value != 0.0:
                raise ChargeError(f"a {self.mechanism} charge has no {name}; leave it 0")
        if self.mechanism == "laplace" and not 0.0 < self.epsilon <= MAX_EPSILON:
            raise ChargeError(f"epsilon must be in (0, {MAX_EPSILON}], got {self.epsilon}")
        if self.mechanism != "laplace" and not (
            MIN_NOISE_MULTIPLIER <= self.noise_multiplier <= MAX_NOISE_MULTIPLIER
        ):
            raise ChargeError(
                f"noise_multiplier must be in [{MIN_NOISE_MULTIPLIER}, {MAX_NOISE_MULTIPLIER}],"
                f" got {self.noise_multiplier}"
            )
        if self.mechanism == "sampled_gaussian" and not 0.0 < self.sampling_rate <= 1.0:
            raise ChargeError(f"sampling_rate must be in (0, 1], got {self.sampling_rate}")

    def to_json(self) -> dict[str, Any]:
        """The fields this mechanism uses, JSON-ready."""
        return {name: getattr(self, name) for name in _FIELDS[self.mechanism]}

    @classmethod
    def from_json(cls, raw: Any) -> Charge:
        """The charge ``raw`` describes, exactly the fields :meth:`to_json` writes."""
        if not isinstance(raw, dict):
            raise ChargeError(f"a charge must be a JSON object, got {type(raw).__name__}")
        mechanism = raw.get("mechanism")
        if not isinstance(mechanism, str) or mechanism not in MECHANISMS:
            raise ChargeError(
                f"unknown mechanism {mechanism!r}; use one of {', '.join(MECHANISMS)}"
            )
        expected = set(_FIELDS[mechanism])
        if set(raw) != expected:
            extra, missing = sorted(set(raw) - expected), sorted(expected - set(raw))
            raise ChargeError(
                f"a {mechanism} charge has exactly the fields {sorted(expected)}"
                f" (unknown: {extra}, missing: {missing})"
            )
        count = raw["count"]
        if isinstance(count, bool) or not isinstance(count, int):
            raise ChargeError(f"charge count must be an integer, got {count!r}")
        numbers = {
            name: _finite_number(name, raw[name]) for name in expected - {"mechanism", "count"}
        }
        return cls(mechanism=mechanism, count=count, **numbers)

    def dp_event(self) -> dp_event.DpEvent:
        """This charge as a dp-accounting event (``count`` > 1: self-composed)."""
        event: dp_event.DpEvent
        if self.mechanism == "laplace":
            # Worst case of pure epsilon-DP: see the module docstring.
            event = dp_event.DiscreteLaplaceDpEvent(noise_parameter=self.epsilon, sensitivity=1)
        elif self.mechanism == "gaussian":
            event = dp_event.GaussianDpEvent(self.noise_multiplier)
        else:
            event = dp_event.PoissonSampledDpEvent(
                self.sampling_rate, dp_event.GaussianDpEvent(self.noise_multiplier)
            )
        return event if self.count == 1 else dp_event.SelfComposedDpEvent(event, self.count)

    def key(self) -> tuple[str, float, float, float]:
        """What identifies the release regardless of ``count`` (for grouping)."""
        return (self.mechanism, self.epsilon, self.noise_multiplier, self.sampling_rate)


def merge_charges(charges: Sequence[Charge]) -> list[Charge]:
    """Equal releases folded into one charge with the summed count, in first-seen order."""
    counts: dict[tuple[str, float, float, float], int] = {}
    first: dict[tuple[str, float, float, float], Charge] = {}
    for charge in charges:
        counts[charge.key()] = counts.get(charge.key(), 0) + charge.count
        first.setdefault(charge.key(), charge)
    return [
        Charge(c.mechanism, c.epsilon, c.noise_multiplier, c.sampling_rate, counts[k])
        for k, c in first.items()
    ]


def encode_charges(charges: Sequence[Charge]) -> bytes:
    """Canonical JSON of one release's charges (sorted keys, no spaces), at most
    :data:`MAX_CHARGES` charges and :data:`MAX_ENCODED_BYTES` bytes."""
    if not charges:
        raise ChargeError("a release has at least one charge")
    if len(charges) > MAX_CHARGES:
        raise ChargeError(f"a release has at most {MAX_CHARGES} charges, got {len(charges)}")
    data = json.dumps(
        [c.to_json() for c in charges], sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode()
    if len(data) > MAX_ENCODED_BYTES:
        raise ChargeError(
            f"charges encode to {len(data)} bytes, over {MAX_ENCODED_BYTES}: merge equal charges"
        )
    return data


def decode_charges(data: bytes) -> list[Charge]:
    """The charges :func:`encode_charges` wrote; anything else raises :class:`ChargeError`
    (including valid JSON in another spelling, so that one release has one encoding)."""
    if len(data) > MAX_ENCODED_BYTES:
        raise ChargeError(f"charges are at most {MAX_ENCODED_BYTES} bytes, got {len(data)}")
    try:
        raw = parse_untrusted(data, max_depth=2)
    except UnreadableJsonError as exc:
        raise ChargeError(f"charges are not readable JSON: {exc}") from None
    if not isinstance(raw, list) or not raw or len(raw) > MAX_CHARGES:
        raise ChargeError(f"charges must be a JSON list of 1 to {MAX_CHARGES} objects")
    charges = [Charge.from_json(item) for item in raw]
    if encode_charges(charges) != bytes(data):
        raise ChargeError("charges are not in canonical form (sorted keys, no spaces)")
    return charges
