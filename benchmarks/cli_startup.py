"""How fast `ailedger --help` answers, next to a bare Python start in the same run.

The CLI imports its chain libraries (web3, py-evm, vyper) only inside commands, so help
costs little more than starting Python. Last line: ``ailedger_help_s: <median seconds>``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def median_seconds(command: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="runs per command (median taken)")
    parser.add_argument("--quick", action="store_true", help="5 runs, for CI")
    args = parser.parse_args()
    runs = 5 if args.quick else args.runs
    exe = shutil.which("ailedger") or str(Path(sys.executable).parent / "ailedger")
    bare = median_seconds([sys.executable, "-c", "pass"], runs)
    help_s = median_seconds([exe, "--help"], runs)
    print(f"python -c pass   {bare:.3f} s (median of {runs})")
    print(f"ailedger --help  {help_s:.3f} s (median of {runs})")
    print(f"ratio_vs_bare_python: {help_s / bare:.2f}")
    print(f"ailedger_help_s: {help_s:.3f}")


if __name__ == "__main__":
    main()
