"""One assignment on the provider's machine: fetch, run confined, send back, commit.

The steps, each safe to crash after (progress is kept in ``provider/jobs/<id>.json``
before the step that depends on it):

1. fetch the bundle from the requester's node (signed request) and check that it hashes
   to the ``bundle_hash`` on chain, so the requester cannot swap the code after posting;
2. prepare inputs (compute-to-data: the owner's own datasets, see :mod:`.c2d`);
3. run it in the :class:`.sandbox.Sandbox` with the job's limits, streaming
   log lines to the requester in sealed batches;
4. add the exit record, apply a dataset's release rules, hash the output tree;
5. upload the output encrypted to the requester, *then* commit its hash (so a committed
   result is always one the requester can check), keeping the salt on disk first.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger._durable import atomic_write
from ailedger.compute.jobs import JobSpec, unpack_bundle
from ailedger.compute.outputs import (
    OutputPolicyViolation,
    apply_output_policy,
    output_hash,
    withhold,
    write_exit_record,
)
from ailedger.compute.provider.c2d import ComputeRefusedError
from ailedger.compute.provider.sandbox import Limits, Sandbox
from ailedger.compute.transfer import seal_log_batch, seal_output
from ailedger.errors import AiledgerError
from ailedger.peer import wire
from ailedger.peer.client import SignedRequestError, send_signed

if TYPE_CHECKING:
    from ailedger.compute.provider.c2d import DataInputs
    from ailedger.session import Session

# Time kept back from the deadline for uploading, committing and revealing.
DEADLINE_MARGIN_S = 10


class JobFetchError(AiledgerError):
    """The requester's node did not hand over a bundle that matches the chain."""


@dataclass
class AssignmentState:
    """What the agent must not forget about one assignment, kept on disk."""

    job_id: int
    requester: str
    redundancy: int
    deadline: int
    price_per_hour: int
    phase: str = "assigned"  # assigned -> committed -> revealed -> done
    output_hash: str = ""
    salt: str = ""
    # Seconds of work to bill (the contract pays no more than passed before the commit).
    seconds: int = 0
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def save(self, directory: Path) -> None:
        atomic_write(directory / f"{self.job_id}.json", json.dumps(asdict(self)).encode())

    @classmethod
    def load(cls, path: Path) -> AssignmentState:
        return cls(**json.loads(path.read_text()))


class LogStream:
    """Buffers a job's output lines and sends them sealed, in numbered batches."""

    def __init__(self, send: Callable[[int, str], None], every: float = 0.5) -> None:
        self._send = send
        self._every = every
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._seq = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> LogStream:
        self._thread.start()
        return self

    def line(self, stream: str, text: str) -> None:
        with self._lock:
            self._lines.append(text if stream == "stdout" else f"[stderr] {text}")

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            text, self._lines = "".join(self._lines), []
            seq = self._seq
            if text:
                self._seq += 1
        if text:
            # Logs are a convenience; the result path reports real failures.
            with contextlib.suppress(AiledgerError):
                self._send(seq, text)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()


class Runner:
    """Runs one assignment; ``commit`` is called with (output hash, seconds) at the end."""

    def __init__(
        self,
        session: Session,
        sandbox: Sandbox,
        state: AssignmentState,
        node_url: str,
        bundle_hash_on_chain: bytes,
        inputs: DataInputs | None,
        gpu: int | None,
        say: Callable[[str], None],
        max_output_mb: int = 1024,
    ) -> None:
        self.session = session
        self.sandbox = sandbox
        self.state = state
        self.url = node_url
        self.expected_bundle = bundle_hash_on_chain
        self.inputs = inputs
        self.gpu = gpu
        self.say = say
        self.max_output_mb = max_output_mb
        self.cancel = threading.Event()
        self.requester_public = session.key_registry.key_of(state.requester)
        if self.requester_public is None:
            raise JobFetchError(f"requester {state.requester} has no encryption key on chain")

    # ------------------------------------------------------------ HTTP helpers

    def _request(self, method: str, path: str, body: bytes | Path = b"") -> Any:
        try:
            return send_signed(
                self.session.require_account(), self.url, self.state.requester, method, path, body
            )
        except SignedRequestError as exc:
            raise JobFetchError(f"job {self.state.job_id}: {exc}") from exc

    def _send_log(self, seq: int, text: str) -> None:
        sealed = seal_log_batch(
            text,
            requester_public=self.requester_public,  # type: ignore[arg-type]
            provider_key=self.session.encryption_key(),
            chain_id=self.session.chain.chain_id,
            job_id=self.state.job_id,
            provider=self.session.address,
            seq=seq,
        )
        self._request("POST", wire.path(wire.JOB_LOGS, job_id=self.state.job_id, seq=seq), sealed)

    # -------------------------------------------------------------------- run

    def run(self, scratch: Path) -> tuple[bytes, int]:
        """Do steps 1-5 up to the upload; returns (output hash, seconds to bill)."""
        job_id = self.state.job_id
        bundle = scratch / "bundle"
        data = self._request("GET", wire.path(wire.JOB_BUNDLE, job_id=job_id)).content
        unpacked = unpack_bundle(data, bundle)
        spec = unpacked.spec
        if unpacked.digest != self.expected_bundle:
            raise JobFetchError(f"job {job_id}: the bundle served differs from its on-chain hash")
        try:
            inputs = self.inputs.prepare(scratch / "inputs") if self.inputs else {}
        except ComputeRefusedError as exc:
            return self._refused(scratch, str(exc))
        limits = self._limits(spec)
        with LogStream(self._send_log) as logs:
            logs.line("stdout", f"[ailedger] job {job_id} starting on {self.session.address}\n")
            result = self.sandbox.run(
                bundle,
                spec.entry,
                spec.runtime,
                limits,
                inputs=inputs,
                gpu=self.gpu,
                env=_seed_env(spec),
                # A job over someone's data could print the rows: what it prints passes no
                # output policy, so none of it leaves the owner's node.
                on_line=logs.line if self.inputs is None else _hold,
                cancel=self.cancel,
            )
            if self.inputs is not None:  # not even how many lines: a count is a number too
                logs.line(
                    "stdout",
                    "[ailedger] the job's own log is held back: "
                    "a compute-to-data job releases only its output\n",
                )
            logs.line(
                "stdout",
                f"[ailedger] job {job_id} stopped: {result.reason}, exit {result.exit_code}, "
                f"{result.usage.cpu_seconds:.1f} cpu-s, {result.usage.wall_seconds:.1f} s\n",
            )
        out = result.output_dir
        try:
            write_exit_record(out, result.exit_code, result.reason)
            if result.reason == "output-too-large":  # never ship what broke the cap
                withhold(out, f"output-too-large: over {limits.output_mb} MiB")
            elif self.inputs is not None:
                try:
                    suppressed = apply_output_policy(out, self.inputs.release_rules(), spec.output)
                    if suppressed:
                        self.say(
                            f"job {job_id}: {len(suppressed)} values suppressed below the "
                            "minimum cell size"
                        )
                except OutputPolicyViolation as exc:
                    self.say(f"job {job_id}: output withheld: {exc}")
                    withhold(out, str(exc))
            digest = output_hash(out)
            self._upload(out, scratch)
        finally:
            shutil.rmtree(out.parent.parent, ignore_errors=True)  # the sandbox's directory
        # The seconds the job actually ran, started seconds counted, never above its cap.
        seconds = max(1, math.ceil(result.usage.wall_seconds))
        self.state.reason = result.reason
        return digest, min(seconds, math.floor(spec.max_hours * 3600))

    def _refused(self, scratch: Path, why: str) -> tuple[bytes, int]:
        """The owner's rules no longer allow the run: the result is the refusal itself, so
        the requester gets a verdict on chain instead of a provider that never answers."""
        self.say(f"job {self.state.job_id}: refused to run: {why}")
        out = scratch / "refused"
        out.mkdir()
        withhold(out, f"refused: {why}")
        self.state.reason = "refused"
        self._upload(out, scratch)
        return output_hash(out), 1

    def _limits(self, spec: JobSpec) -> Limits:
        budget = spec.max_hours * 3600
        wall = min(budget, self.state.deadline - time.time() - DEADLINE_MARGIN_S)
        if wall <= 0:
            raise JobFetchError(f"job {self.state.job_id}: too close to its deadline to run")
        output_mb = self.max_output_mb
        if self.inputs is not None:
            output_mb = min(
                output_mb, max(1, math.ceil(self.inputs.release_rules().max_output_bytes / 2**20))
            )
        return Limits(
            cpu_seconds=budget * spec.cpu_cores,
            memory_mb=spec.ram_mb,
            wall_seconds=wall,
            output_mb=output_mb,
        )

    def _upload(self, out: Path, scratch: Path) -> None:
        upload = scratch / "output.bin"
        seal_output(
            out,
            upload,
            requester=self.state.requester,
            requester_public=self.requester_public,  # type: ignore[arg-type]
            provider_key=self.session.encryption_key(),
            chain_id=self.session.chain.chain_id,
            job_id=self.state.job_id,
        )
        self._request("PUT", wire.path(wire.JOB_OUTPUT, job_id=self.state.job_id), upload)


def _hold(stream: str, text: str) -> None:
    """Where a compute-to-data job's own log lines go: nowhere."""


def _seed_env(spec: JobSpec) -> dict[str, str]:
    """Deterministic mode: fixed seeds and one thread, so k providers agree bit for bit."""
    env: dict[str, str] = {}
    if spec.seed is not None:
        env["AILEDGER_SEED"] = str(spec.seed)
        env["PYTHONHASHSEED"] = str(spec.seed)
    if spec.deterministic:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = "1"
        env["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
    return env


def scratch_dir(base: Path | None) -> Path:
    return Path(tempfile.mkdtemp(prefix="ailedger-assignment-", dir=base))
