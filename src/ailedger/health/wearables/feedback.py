"""Personal feedback from a person's wearable data, computed at their own node.

The Observations are reduced to daily values (UTC days): resting heart rate and HRV (the
day's mean), steps and sleep (the day's sum), blood pressure (the day's mean systolic and
diastolic). Each rule compares the last :data:`RECENT_DAYS` days with what came before,
or places blood pressure in a category, and says so in a sentence with its numbers:

- ``resting-heart-rate-rise``: the recent mean at least 5 /min above the baseline (the
  mean of up to 28 days before). A sustained rise in resting heart rate is an early sign
  of illness, strain or poor recovery.
- ``hrv-drop``: the recent mean of SDNN at least 15 % below the baseline.
- ``activity-drop``: recent daily steps at least 30 % below the baseline.
- ``short-sleep``: recent nights under 7 hours on average (the adult minimum of the
  American Academy of Sleep Medicine and Sleep Research Society consensus, 2015).
- ``blood-pressure``: the mean of the recent readings (at least two, on two days) in the
  ACC/AHA 2017 categories: normal < 120 and < 80; elevated 120-129 and < 80; stage 1
  hypertension 130-139 or 80-89; stage 2 >= 140 or >= 90; a hypertensive crisis > 180
  and/or > 120 says to seek care now.

A baseline needs :data:`MIN_BASELINE_DAYS` days with values; otherwise the finding says
there is not enough data. This is feedback, not a diagnosis: every flag says what to do
with it (see a clinician), and nothing here decides care.

Each flag is recorded as a *feedback receipt*: the audit log gets an entry (kind
``health-feedback``) holding the rule, the digest of the rule set, and a commitment
``sha256(salt || canonical finding)``: no value is readable in the log. The person keeps
the receipt (the finding, the salt and the entry's audit receipt) and anyone they show it
to checks, against the chain alone, that this node recorded exactly this finding then
(:func:`verify_feedback`).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import date
from statistics import fmean
from typing import Any, Protocol

from ailedger.health.wearables.patterns import daily_values

ENTRY_KIND = "health-feedback"
RECENT_DAYS = 7
BASELINE_DAYS = 28
MIN_BASELINE_DAYS = 7
RHR_RISE = 5.0  # /min
HRV_DROP = 0.15
STEPS_DROP = 0.30
SLEEP_MINUTES = 7 * 60
BP_MIN_DAYS = 2
RULES = {
    "resting-heart-rate-rise": {"kind": "resting_heart_rate", "rise": RHR_RISE},
    "hrv-drop": {"kind": "hrv_sdnn", "drop": HRV_DROP},
    "activity-drop": {"kind": "steps", "drop": STEPS_DROP},
    "short-sleep": {"kind": "sleep", "below_minutes": SLEEP_MINUTES},
    "blood-pressure": {"standard": "ACC/AHA 2017", "min_days": BP_MIN_DAYS},
}
RULES_DIGEST = hashlib.sha256(json.dumps(RULES, sort_keys=True).encode()).hexdigest()
SEE_A_CLINICIAN = "this is feedback, not a diagnosis: talk it over with your clinician"


@dataclass(frozen=True)
class Finding:
    rule: str
    status: str  # "flag", "ok" or "not enough data"
    explanation: str
    inputs: dict[str, Any]  # the daily values the rule used, by day


def _split(days: dict[date, float]) -> tuple[dict[date, float], dict[date, float]]:
    """(baseline, recent): the last RECENT_DAYS days that have data, and up to
    BASELINE_DAYS days before them."""
    if not days:
        return {}, {}
    last = max(days)
    recent = {d: v for d, v in days.items() if (last - d).days < RECENT_DAYS}
    base = {
        d: v
        for d, v in days.items()
        if RECENT_DAYS <= (last - d).days < RECENT_DAYS + BASELINE_DAYS
    }
    return base, recent


def _inputs(*groups: dict[date, float]) -> dict[str, Any]:
    return {d.isoformat(): round(v, 3) for g in groups for d, v in sorted(g.items())}


def _change_rule(
    rule: str, days: dict[date, float], what: str, unit: str, judge: Callable[[float, float], bool]
) -> Finding:
    base, recent = _split(days)
    if len(base) < MIN_BASELINE_DAYS or not recent:
        return Finding(
            rule,
            "not enough data",
            f"{what}: {len(base)} baseline days and {len(recent)} recent ones; "
            f"{MIN_BASELINE_DAYS} days before the last {RECENT_DAYS} are needed",
            _inputs(base, recent),
        )
    before, now = fmean(base.values()), fmean(recent.values())
    flagged = judge(before, now)
    explanation = (
        f"{what} averaged {now:.1f} {unit} over the last {len(recent)} days against "
        f"{before:.1f} {unit} over the {len(base)} days before ({now - before:+.1f})"
    )
    if flagged:
        explanation += f": {SEE_A_CLINICIAN}"
    return Finding(rule, "flag" if flagged else "ok", explanation, _inputs(base, recent))


def _sleep_rule(days: dict[date, float]) -> Finding:
    _, recent = _split(days)
    limit = float(SLEEP_MINUTES)
    if not recent:
        return Finding("short-sleep", "not enough data", "sleep: no nights recorded", {})
    mean = fmean(recent.values())
    flagged = mean < limit
    explanation = (
        f"sleep averaged {mean / 60:.1f} h over the last {len(recent)} nights; adults need "
        f"at least {limit / 60:.0f} h"
    )
    if flagged:
        explanation += f": {SEE_A_CLINICIAN}"
    return Finding("short-sleep", "flag" if flagged else "ok", explanation, _inputs(recent))


def bp_category(systolic: float, diastolic: float) -> str:
    """ACC/AHA 2017 category of a blood pressure (mmHg)."""
    if systolic > 180 or diastolic > 120:
        return "hypertensive crisis"
    if systolic >= 140 or diastolic >= 90:
        return "stage 2 hypertension"
    if systolic >= 130 or diastolic >= 80:
        return "stage 1 hypertension"
    if systolic >= 120:
        return "elevated"
    return "normal"


def _bp_rule(systolic: dict[date, float], diastolic: dict[date, float]) -> Finding:
    _, recent_s = _split(systolic)
    _, recent_d = _split(diastolic)
    days = sorted(set(recent_s) & set(recent_d))
    if len(days) < BP_MIN_DAYS:
        return Finding(
            "blood-pressure",
            "not enough data",
            f"blood pressure: readings on {len(days)} recent days; two days are needed",
            {},
        )
    s, d = fmean(recent_s[x] for x in days), fmean(recent_d[x] for x in days)
    category = bp_category(s, d)
    explanation = f"blood pressure averaged {s:.0f}/{d:.0f} mmHg over {len(days)} days: {category}"
    if category == "hypertensive crisis":
        explanation += " (ACC/AHA 2017): seek medical care now"
    elif category != "normal":
        explanation += f" (ACC/AHA 2017): {SEE_A_CLINICIAN}"
    inputs = {x.isoformat(): [round(recent_s[x], 1), round(recent_d[x], 1)] for x in days}
    return Finding("blood-pressure", "ok" if category == "normal" else "flag", explanation, inputs)


def assess(observations: Iterable[dict[str, Any]]) -> list[Finding]:
    """Every rule's finding over the person's Observations."""
    days = daily_values(observations)

    def of(kind: str) -> dict[date, float]:
        return days.get(kind, {})

    return [
        _change_rule(
            "resting-heart-rate-rise",
            of("resting_heart_rate"),
            "resting heart rate",
            "/min",
            lambda before, now: now - before >= RHR_RISE,
        ),
        _change_rule(
            "hrv-drop",
            of("hrv_sdnn"),
            "heart-rate variability (SDNN)",
            "ms",
            lambda before, now: now <= before * (1 - HRV_DROP),
        ),
        _change_rule(
            "activity-drop",
            of("steps"),
            "daily steps",
            "steps",
            lambda before, now: now <= before * (1 - STEPS_DROP),
        ),
        _sleep_rule(of("sleep")),
        _bp_rule(of("systolic_bp"), of("diastolic_bp")),
    ]


# ---------------------------------------------------------------- receipts


class FeedbackLog(Protocol):
    def append(self, entry: dict[str, Any]) -> int: ...

    def receipt(self, index: int) -> dict[str, Any]: ...


def _canonical(finding: dict[str, Any]) -> bytes:
    return json.dumps(finding, sort_keys=True, separators=(",", ":")).encode()


def commitment(finding: dict[str, Any], salt: bytes) -> str:
    return hashlib.sha256(salt + _canonical(finding)).hexdigest()


@dataclass(frozen=True)
class Recorded:
    """A flag as logged: its audit index, the finding, and the salt of its commitment."""

    index: int
    finding: dict[str, Any]
    salt: bytes


def record_flags(findings: Iterable[Finding], log: FeedbackLog) -> list[Recorded]:
    """An audit entry for each flag: rule, rule-set digest, commitment; no value."""
    recorded = []
    for finding in findings:
        if finding.status != "flag":
            continue
        body, salt = asdict(finding), secrets.token_bytes(32)
        entry = {
            "kind": ENTRY_KIND,
            "rule": finding.rule,
            "rules": RULES_DIGEST,
            "commitment": commitment(body, salt),
            "time": int(time.time()),
        }
        recorded.append(Recorded(log.append(entry), body, salt))
    return recorded


def feedback_receipt(recorded: Recorded, log: FeedbackLog, node: str) -> dict[str, Any]:
    """What the person keeps: the finding, its salt and the entry's audit receipt (made
    after the log is checkpointed and anchored, so it proves against the chain)."""
    return {
        "kind": "ailedger-feedback-receipt",
        "finding": recorded.finding,
        "salt": recorded.salt.hex(),
        "audit": log.receipt(recorded.index),
        "node": node,
    }


def verify_feedback(
    receipt: dict[str, Any], check_receipt: Callable[[dict[str, Any]], list[str]]
) -> list[str]:
    """What is wrong with a feedback receipt (empty when it holds): the audit entry is a
    feedback entry of this rule set committing to exactly this finding, and
    ``check_receipt`` (the audit receipt against the node's key and anchors) finds no
    problem."""
    try:
        finding, salt = dict(receipt["finding"]), bytes.fromhex(receipt["salt"])
        entry = json.loads(receipt["audit"]["entry"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return [f"the receipt is malformed: {exc!r}"]
    problems = []
    if entry.get("kind") != ENTRY_KIND or entry.get("rule") != finding.get("rule"):
        problems.append("the audit entry is not this finding's feedback entry")
    elif entry.get("commitment") != commitment(finding, salt):
        problems.append("the finding is not the one this node recorded (its commitment differs)")
    return problems + check_receipt(receipt["audit"])
