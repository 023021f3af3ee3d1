"""The demo's compute chapters: a GPU owner earns tokens for a training job, and jobs go
to the hospital's data instead of the data leaving (compute-to-data), one of them training
the model that the trustworthy-AI chapter registers and traces back to the data."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ailedger.chain.contracts import JobStatus
from ailedger.compute.outputs import read_exit_record
from ailedger.compute.provider.agent import AgentSettings, ProviderAgent
from ailedger.compute.provider.machine import detect_machine
from ailedger.compute.provider.sandbox import ConfinementUnavailableError, Sandbox
from ailedger.errors import AiledgerError
from ailedger.session import Session
from ailedger.units import format_amount

Say = Callable[[str], None]
AIL = 10**18

TRAIN_SCRIPT = '''\
"""Logistic regression by gradient descent on synthetic data (fixed seed: deterministic)."""
import json, math, os, random

rng = random.Random(int(os.environ.get("AILEDGER_SEED", "7")))
rows = []
for _ in range(2000):
    x = [rng.gauss(0, 1) for _ in range(4)]
    y = 1 if 1.5 * x[0] - 2.0 * x[1] + 0.5 * x[3] + rng.gauss(0, 0.5) > 0 else 0
    rows.append((x, y))
w, b = [0.0] * 4, 0.0
for epoch in range(60):
    gw, gb = [0.0] * 4, 0.0
    for x, y in rows:
        p = 1 / (1 + math.exp(-(sum(wi * xi for wi, xi in zip(w, x)) + b)))
        for i in range(4):
            gw[i] += (p - y) * x[i] / len(rows)
        gb += (p - y) / len(rows)
    w = [wi - 0.5 * g for wi, g in zip(w, gw)]
    b -= 0.5 * gb
    if epoch % 20 == 0:
        print(f"epoch {epoch}: weights {[round(v, 3) for v in w]}", flush=True)
hits = sum((sum(wi * xi for wi, xi in zip(w, x)) + b > 0) == bool(y) for x, y in rows)
out = os.environ["AILEDGER_OUTPUT"]
with open(os.path.join(out, "model.json"), "w") as f:
    json.dump({"weights": [round(v, 6) for v in w], "bias": round(b, 6),
               "train_accuracy": hits / len(rows)}, f, sort_keys=True)
print(f"trained: accuracy {hits / len(rows):.3f}")
'''

STATS_SCRIPT = '''\
"""Cohort statistics over the hospital's dataset, computed where the data lives."""
import csv, json, os

data = os.environ["AILEDGER_INPUTS"]
(name,) = os.listdir(data)
with open(os.path.join(data, name)) as f:
    rows = list(csv.DictReader(f))
born = [int(r["year_of_birth"]) for r in rows]
by_gene = {}
for r in rows:
    by_gene[r["candidate_gene"]] = by_gene.get(r["candidate_gene"], 0) + 1
with open(os.path.join(os.environ["AILEDGER_OUTPUT"], "stats.json"), "w") as f:
    json.dump({"patients": len(rows), "mean_year_of_birth": sum(born) / len(born),
               "by_gene": by_gene, "rare_born_1950": born.count(1950)}, f, sort_keys=True)
print(f"summarised {len(rows)} records")
'''
# What the statistics job may release, declared in its job.toml (so covered by the hash
# the hospital allows): every count and statistic by name, each statistic with its cell.
STATS_OUTPUT = """\
[output]
counts = ["stats.json:patients", "stats.json:by_gene.NGLY1", "stats.json:by_gene.KMT2D",
          "stats.json:by_gene.SCN1A", "stats.json:by_gene.MECP2", "stats.json:rare_born_1950"]
statistics = { "stats.json:mean_year_of_birth" = "stats.json:patients" }
"""

COHORT_TRAIN_SCRIPT = '''\
"""Logistic regression over the hospital's cohort, run at its node: only the model leaves."""
import csv, json, math, os

# Bounds declared from what the measures can be, never read off the rows: inputs are
# scaled to [-1, 1] by them, and the served model refuses values outside them.
BOUNDS = {"onset_months": (0.0, 60.0), "delay_score": (0.0, 10.0)}
data = os.environ["AILEDGER_INPUTS"]
(name,) = os.listdir(data)
with open(os.path.join(data, name)) as f:
    rows = list(csv.DictReader(f))
xs = [[2 * (min(max(float(r[k]), lo), hi) - lo) / (hi - lo) - 1 for k, (lo, hi) in BOUNDS.items()]
      for r in rows]
ys = [int(r["regression"]) for r in rows]
w, b = [0.0] * len(BOUNDS), 0.0
for epoch in range(300):
    gw, gb = [0.0] * len(w), 0.0
    for x, y in zip(xs, ys):
        p = 1 / (1 + math.exp(-(sum(wi * xi for wi, xi in zip(w, x)) + b)))
        gw = [g + (p - y) * xi / len(xs) for g, xi in zip(gw, x)]
        gb += (p - y) / len(xs)
    w = [wi - 2.0 * g for wi, g in zip(w, gw)]
    b -= 2.0 * gb
hits = sum((sum(wi * xi for wi, xi in zip(w, x)) + b > 0) == bool(y) for x, y in zip(xs, ys))
# Objects by feature name: an aggregate-only release carries numbers at declared places.
model = {"patients": len(rows), "bias": round(b, 6), "train_accuracy": hits / len(rows),
         "weights": {k: round(v, 6) for k, v in zip(BOUNDS, w)},
         "lower": {k: lo for k, (lo, _) in BOUNDS.items()},
         "upper": {k: hi for k, (_, hi) in BOUNDS.items()}}
with open(os.path.join(os.environ["AILEDGER_OUTPUT"], "model.json"), "w") as f:
    json.dump(model, f, sort_keys=True)
print(f"trained on {len(rows)} patients: accuracy {hits / len(rows):.3f}")
'''
COHORT_FEATURES = ("onset_months", "delay_score")
# The model's places: the training cohort's size is the cell every other number describes,
# so a cohort under the hospital's minimum cell size releases no weight at all.
COHORT_TRAIN_OUTPUT = '[output]\ncounts = ["model.json:patients"]\n[output.statistics]\n' + "".join(
    f'"model.json:{key}" = "model.json:patients"\n'
    for key in (
        "bias",
        "train_accuracy",
        *(f"{part}.{name}" for part in ("weights", "lower", "upper") for name in COHORT_FEATURES),
    )
)
# Where chapter 11 puts the model trained at the hospital, which chapter 13 registers.
HOSPITAL_MODEL = "hospital-model"

DUMP_SCRIPT = """\
import os, shutil
data = os.environ["AILEDGER_INPUTS"]
(name,) = os.listdir(data)
shutil.copy(os.path.join(data, name), os.path.join(os.environ["AILEDGER_OUTPUT"], "rows.csv"))
"""


def write_bundle(
    directory: Path,
    script: str,
    *,
    inputs: tuple[str, ...] = (),
    redundancy: int = 1,
    output: str = "",
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "main.py").write_text(script)
    listed = ", ".join(f'"{i}"' for i in inputs)
    (directory / "job.toml").write_text(
        "[job]\n"
        'entry = "main.py"\nruntime = "python"\n'
        f"inputs = [{listed}]\nseed = 7\ndeterministic = true\n"
        "[resources]\ncpu_cores = 1\nram_mb = 512\nmax_hours = 1\n"
        f'[market]\nmax_price_per_hour = "5"\ndeadline_hours = 1\nredundancy = {redundancy}\n'
        + output
    )
    return directory


def make_sandbox(say: Say) -> Sandbox:
    try:
        return Sandbox()
    except ConfinementUnavailableError:
        say(
            "  (this machine cannot confine jobs: the demo runs them unconfined, "
            "and the offer says so on chain)"
        )
        return Sandbox(allow_unconfined=True)


@contextmanager
def running_agent(
    session: Session, sandbox: Sandbox, price: int, say: Say
) -> Iterator[ProviderAgent]:
    settings = AgentSettings(price_per_hour=price, stake=100 * AIL, max_jobs=2)
    agent = ProviderAgent(session, sandbox, detect_machine(), settings, lambda line: None)
    for line in agent.prepare():
        say(f"  {line}")
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield agent
    finally:
        stop.set()
        thread.join(timeout=30)


def wait_for_status(
    session: Session, job_id: int, wanted: set[JobStatus], timeout: float = 120
) -> JobStatus:
    market = session.compute_market
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        record = market.job(job_id)
        if record is not None and record.status in wanted:
            return record.status
        time.sleep(0.1)
    raise TimeoutError(
        f"job {job_id} did not reach {sorted(s.name for s in wanted)} in {timeout:.0f} s"
    )


def rent_a_gpu(researcher: Session, gpu_owner: Session, root: Path, say: Say) -> int:
    """The researcher's training job on the GPU owner's machine; returns its id (its
    output, a model, is in ``root / "trained-model"``)."""
    from ailedger.compute.requester.job import fetch_result, submit

    say("\n[bold]10. A GPU owner rents out spare time; the researcher trains a model on it[/bold]")
    sandbox = make_sandbox(say)
    before = gpu_owner.token.balance_of(gpu_owner.address)
    with running_agent(gpu_owner, sandbox, 2 * AIL, say):
        bundle = write_bundle(root / "train-job", TRAIN_SCRIPT)
        started = time.monotonic()
        job = submit(researcher, bundle, require_confined=sandbox.mode is not None)
        say(
            f"  job {job.job_id} posted: {format_amount(job.escrow)} in escrow; auction closed "
            f"after {time.monotonic() - started:.2f} s, assigned to {', '.join(job.providers)}"
        )
        wait_for_status(researcher, job.job_id, {JobStatus.REVIEW, JobStatus.COMPLETED})
        digest, _ = fetch_result(researcher, job.job_id, root / "trained-model")
        model = json.loads((root / "trained-model" / "model.json").read_text())
        say(
            f"  result decrypted and checked against the hash on chain (0x{digest.hex()[:16]}…): "
            f"accuracy {model['train_accuracy']:.3f}"
        )
        r = researcher.compute_market.accept(job.job_id)
        say(f"  the researcher accepts the result  tx {r.tx_hash}")
    earned = gpu_owner.token.balance_of(gpu_owner.address) - before + 100 * AIL
    (slot,) = researcher.compute_market.assignments(job.job_id)
    billed = round(slot["paid"] * 3600 / slot["price_per_hour"])  # what the chain paid for
    say(
        f"  the GPU owner earned {format_amount(earned)} "
        f"({billed} s at its 2 AIL per hour bid; its 100 AIL stake stays staked)"
    )
    return job.job_id


def compute_to_data(
    hospital: Session, researcher: Session, dataset: bytes, root: Path, say: Say
) -> int:
    """Statistics, a refused copy, and a model trained at the hospital under a grant for
    model training; returns the training job (its output is in ``root / HOSPITAL_MODEL``)."""
    from ailedger.chain.contracts import OutputPolicy
    from ailedger.chain.contracts.data_market import PURPOSES
    from ailedger.compute.jobs import bundle_hash
    from ailedger.compute.requester.job import fetch_result, submit
    from ailedger.sharing.requester import request_access

    say("\n[bold]11. Compute-to-data: the researcher's code goes to the hospital's cohort[/bold]")
    research, training = PURPOSES["rare-disease-research"], PURPOSES["model-training"]
    name = "0x" + dataset.hex()
    stats = write_bundle(root / "stats-job", STATS_SCRIPT, inputs=(name,), output=STATS_OUTPUT)
    dump = write_bundle(root / "dump-job", DUMP_SCRIPT, inputs=(name,))
    train = write_bundle(
        root / "cohort-train-job", COHORT_TRAIN_SCRIPT, inputs=(name,), output=COHORT_TRAIN_OUTPUT
    )
    policy = hospital.compute_policy
    for bundle in (stats, dump, train):
        policy.allow_algorithm(dataset, bundle_hash(bundle))
    policy.set_output_policy(
        dataset, OutputPolicy(max_output_bytes=4096, aggregate_only=True, min_cell_size=10)
    )
    say(
        "  the hospital allows three reviewed algorithms; outputs must be the counts and "
        "statistics a job declares, under 4 KiB, each cell of at least 10 patients "
        "(exact values: not differentially private)"
    )
    grant, _ = request_access(researcher, dataset, research)
    hospital.data_market.grant(grant)
    training_grant, _ = request_access(researcher, dataset, training)
    hospital.data_market.grant(training_grant)
    say(
        f"  the researcher holds grant {grant} for rare-disease research and grant "
        f"{training_grant} for model training (50 AIL each, paid to the hospital)"
    )
    sandbox = make_sandbox(lambda line: None)
    hospital.token.faucet(200 * AIL)
    with running_agent(hospital, sandbox, 1 * AIL, say):
        job = submit(researcher, stats, purpose=research, require_confined=sandbox.mode is not None)
        say(f"  job {job.job_id} runs at the hospital's own node: {', '.join(job.providers)}")
        wait_for_status(researcher, job.job_id, {JobStatus.REVIEW})
        fetch_result(researcher, job.job_id, root / "stats")
        released = root / "stats" / "stats.json"
        if not released.exists():
            raise AiledgerError(
                f"the statistics job released nothing: {read_exit_record(root / 'stats')}"
            )
        say(f"  released result: {released.read_text().strip()}")
        say("  (the 7 patients born in 1950 are a cell below 10: suppressed as null)")
        job = submit(researcher, dump, purpose=research, require_confined=sandbox.mode is not None)
        wait_for_status(researcher, job.job_id, {JobStatus.REVIEW})
        fetch_result(researcher, job.job_id, root / "dump")
        verdict = json.loads((root / "dump" / "ailedger-exit.json").read_text())["reason"]
        say(f"  a job that copies the rows gets nothing out: {verdict}")
        training_job = _train_at_the_hospital(researcher, train, training, sandbox, root, say)
    from ailedger.sharing.owner import OwnerNode

    with OwnerNode(hospital) as node:
        reads = [
            node.audit.entry(i)
            for i in range(node.audit.size)
            if node.audit.entry(i).get("kind") == "compute-read"
        ]
    say(f"  the hospital's audit log holds {len(reads)} compute-read entries for these jobs")
    return training_job


def _train_at_the_hospital(
    researcher: Session, bundle: Path, purpose: int, sandbox: Sandbox, root: Path, say: Say
) -> int:
    """The model job: it reads the cohort under the model-training grant (submit picks
    the grant for that purpose), and only its declared numbers come back."""
    from ailedger.compute.requester.job import fetch_result, submit

    job = submit(researcher, bundle, purpose=purpose, require_confined=sandbox.mode is not None)
    wait_for_status(researcher, job.job_id, {JobStatus.REVIEW})
    fetch_result(researcher, job.job_id, root / HOSPITAL_MODEL)
    released = root / HOSPITAL_MODEL / "model.json"
    if not released.exists():
        raise AiledgerError(
            f"the training job released nothing: {read_exit_record(root / HOSPITAL_MODEL)}"
        )
    model = json.loads(released.read_text())
    weights = ", ".join(f"{k} {v:+.2f}" for k, v in model["weights"].items())
    say(
        f"  job {job.job_id} trains a model at the hospital's node under the model-training "
        f"grant: {model['patients']} patients, accuracy {model['train_accuracy']:.3f}, "
        f"weights {weights}; only the numbers its job.toml declares leave"
    )
    r = researcher.compute_market.accept(job.job_id)
    say(f"  the researcher accepts the model  tx {r.tx_hash}")
    return job.job_id
