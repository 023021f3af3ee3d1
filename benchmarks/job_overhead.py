"""Overhead of running a CPU job through the sandbox, against running the same script directly.

Goal (issue): a 60-second CPU job costs at most 5% more wall time through the sandbox than
the same script run directly. The job is a pure-Python integer loop, calibrated on this
machine so that a direct run takes ``--seconds`` (60; ``--quick``: 10). It lives in a bundle
(``job.toml`` + ``job.py``, validated with ``load_bundle``) and is run

* directly: ``Runtime.command`` of ``python_runtime()`` (the interpreter the sandbox uses,
  same flags) on the bundle's ``job.py``, as a plain subprocess with the same environment
  variables the sandbox sets; and
* through ``Sandbox(...).run(...)``, confined (bubblewrap, else ``unshare``; the sandbox picks),
  timed from the call to ``run()`` to its return, so the bundle copy, ``chown``, namespace
  setup, rlimits, log pumping and the wait loop all count.

Each ``--repeats`` runs direct, sandbox, sandbox, direct (ABBA, so drift on a shared machine
hits both sides alike); the medians are compared. The last line is ``overhead_pct: x``
(100 * (sandbox / direct - 1); target <= 5).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

from ailedger.compute.jobs import load_bundle
from ailedger.compute.provider.sandbox import Limits, Sandbox, confinement, python_runtime

JOB = textwrap.dedent(
    """\
    import os
    import sys
    import time

    n = int(sys.argv[1]) if len(sys.argv) > 1 else int(open("iterations.txt").read())
    t0 = time.perf_counter()
    x, acc = 12345, 0
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        acc ^= x >> (i & 15)
    loop = time.perf_counter() - t0
    out = os.environ.get("AILEDGER_OUTPUT")
    if out:
        with open(os.path.join(out, "result.txt"), "w") as f:
            f.write(str(acc))
    print(f"acc={acc} loop_s={loop:.3f}")
    """
)

JOB_TOML = textwrap.dedent(
    """\
    [job]
    entry = "job.py"
    runtime = "python"

    [resources]
    cpu_cores = 1
    ram_mb = 512
    max_hours = 1

    [market]
    max_price_per_hour = "0.5"
    deadline_hours = 2
    """
)


def _loop_seconds(text: str) -> float:
    return float(text.rsplit("loop_s=", 1)[1].split()[0])


def direct_run(command: tuple[str, ...], bundle: Path, out: Path) -> tuple[float, float]:
    """Wall seconds of a plain subprocess run of the job, and the job's own loop seconds."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(bundle),
        "TMPDIR": str(out),
        "LANG": "C.UTF-8",
        "AILEDGER_INPUTS": str(out),
        "AILEDGER_OUTPUT": str(out),
        "CUDA_VISIBLE_DEVICES": "",
    }
    started = time.monotonic()
    proc = subprocess.run(
        [*command, str(bundle / "job.py")],
        cwd=bundle,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.monotonic() - started
    return wall, _loop_seconds(proc.stdout)


def sandbox_run(box: Sandbox, bundle: Path, limits: Limits) -> tuple[float, float]:
    spec = load_bundle(bundle)
    started = time.monotonic()
    result = box.run(bundle, spec.entry, spec.runtime, limits)
    wall = time.monotonic() - started
    if result.reason != "ok":
        raise SystemExit(
            f"sandboxed job failed: {result.reason}\n{result.stderr_path.read_text()[-2000:]}"
        )
    text = result.stdout_path.read_text()
    shutil.rmtree(result.output_dir.parent.parent, ignore_errors=True)
    return wall, _loop_seconds(text)


def calibrate(command: tuple[str, ...], bundle: Path, seconds: float) -> int:
    """Iterations for a ``seconds``-long loop, from two short direct runs."""
    n = 1_000_000
    for _ in range(2):
        proc = subprocess.run(
            [*command, str(bundle / "job.py"), str(n)],
            cwd=bundle,
            capture_output=True,
            text=True,
            check=True,
        )
        rate = n / _loop_seconds(proc.stdout)
        n = int(rate * min(seconds / 10, 2.0))
    return int(rate * seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10-second job (CI, about 1 min)")
    parser.add_argument("--seconds", type=float, help="direct run length (default 60; quick 10)")
    parser.add_argument(
        "--repeats", type=int, default=1, help="ABBA rounds (2 runs per side each); default 1"
    )
    args = parser.parse_args()
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    runtime = python_runtime()
    mode = confinement()
    box = Sandbox({"python": runtime}, allow_unconfined=mode is None)
    print(f"interpreter: {' '.join(runtime.command)}; confinement: {box.mode or 'NONE'}")
    limits = Limits(
        cpu_seconds=seconds * 10 + 60,
        memory_mb=1024,
        wall_seconds=seconds * 10 + 120,
        output_mb=64,
        max_processes=64,
    )
    with tempfile.TemporaryDirectory(prefix="ailedger-bench-overhead-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o711)  # the sandbox's job uid must reach its job directories
        bundle, out = root / "bundle", root / "direct-out"
        bundle.mkdir()
        out.mkdir()
        (bundle / "job.py").write_text(JOB)
        (bundle / "job.toml").write_text(JOB_TOML)
        n = calibrate(runtime.command, bundle, seconds)
        (bundle / "iterations.txt").write_text(str(n))
        print(f"calibrated: {n:,} iterations for ~{seconds:.0f} s")
        box.base_dir = root
        direct: list[tuple[float, float]] = []
        boxed: list[tuple[float, float]] = []
        for r in range(args.repeats):
            for side in ("direct", "sandbox", "sandbox", "direct"):
                if side == "direct":
                    wall, loop = direct_run(runtime.command, bundle, out)
                    direct.append((wall, loop))
                else:
                    wall, loop = sandbox_run(box, bundle, limits)
                    boxed.append((wall, loop))
                print(
                    f"  round {r + 1} {side:7s}: wall {wall:7.2f} s  (job's own loop {loop:.2f} s)"
                )
        d = statistics.median(w for w, _ in direct)
        s = statistics.median(w for w, _ in boxed)
        d_loop = statistics.median(lp for _, lp in direct)
        s_loop = statistics.median(lp for _, lp in boxed)
        print(f"direct  (median of {len(direct)}): {d:.2f} s wall, loop {d_loop:.2f} s")
        print(f"sandbox (median of {len(boxed)}): {s:.2f} s wall, loop {s_loop:.2f} s")
        print(f"fixed cost outside the loop: direct {d - d_loop:.3f} s, sandbox {s - s_loop:.3f} s")
        extra = (s - s_loop) - (d - d_loop)
        print(
            f"sandbox start-up/teardown cost: {extra * 1000:+.0f} ms"
            f" = {extra / d * 100:+.3f}% of the direct run (the rest of the difference is"
            " the loop itself running faster or slower)"
        )
        print(f"ratio_sandbox_vs_direct: {s / d:.4f}")
        print(f"overhead_pct: {(s / d - 1) * 100:.2f}")


if __name__ == "__main__":
    main()
