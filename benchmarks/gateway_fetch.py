"""Fetch throughput through the owner's data gateway, next to a plain HTTP download.

Two parties on loopback, as in ``tests/sharing/test_two_parties.py``: the owner's home
serves its embedded chain (``ailedger chain serve``) and runs its gateway (``ailedger
node start``), each in a process of its own; the researcher's home uses that chain over
JSON-RPC. The owner publishes a random file (``data publish --auto``, price 0, unlimited
reads), the researcher registers its key and is granted access on request.

Measured, in this process, with the same httpx client and 1 MiB reads on both sides:

* gateway fetch = ``sharing.requester.fetch``: read the dataset record, grant and gateway
  URL from the chain, sign the request, ``POST /v1/access`` (the gateway checks the grant
  on chain and appends a durable audit entry before streaming), write the ciphertext to a
  temporary file, hash it with SHA-256 against the chain, unwrap the data key (HPKE),
  decrypt and authenticate every segment into the output file (fsync + rename).
* plain HTTP (the reference) = ``GET`` the *same* ciphertext blob file from a bare uvicorn +
  Starlette server in a process of its own, streaming it in 1 MiB chunks exactly like the
  gateway does, written to a file in the same directory (flush + fsync + rename).

Each side runs ``--reps`` times, alternating, output deleted between runs, dirty pages
synced before every run; the best run of each side counts. MB/s = 10^6 bytes of plaintext
per second (the ciphertext is 16 bytes per 64 KiB segment larger). ``--quick`` uses
64 MiB, the full run 512 MiB. Last line:
``ratio_vs_plain_http: <gateway MB/s / plain MB/s>`` (target >= 0.5).
``--profile`` adds one fetch under a phase timer and cProfile (client side only).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
PASSPHRASE = "gateway fetch benchmark"
PURPOSE = "rare-disease-research"
SCRYPT_N = 2**14  # benchmark homes: a small KDF cost is fine
READY_TIMEOUT_S = 120.0


# ---------------------------------------------------------------- plain HTTP server (child)


def _serve_plain(blob: Path, port: int) -> None:
    """The reference server: one route streaming ``blob`` in 1 MiB chunks (no checks)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    def chunks() -> Iterator[bytes]:
        with blob.open("rb") as handle:
            while block := handle.read(MIB):
                yield block

    async def download(request: Request) -> Response:
        headers = {"Content-Length": str(blob.stat().st_size)}
        return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)

    async def health(request: Request) -> Response:
        return Response("ok")

    app = Starlette(routes=[Route("/blob", download), Route("/health", health)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# ---------------------------------------------------------------- the two parties


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Party:
    """One node home, driven through the real CLI in child processes."""

    def __init__(self, home: Path, chain: str | None) -> None:
        self.home = home
        self.chain = chain
        env = {
            **os.environ,
            "AILEDGER_HOME": str(home),
            "AILEDGER_PASSPHRASE": PASSPHRASE,
            "COLUMNS": "200",
        }
        env.pop("AILEDGER_CHAIN", None)
        if chain:
            env["AILEDGER_CHAIN"] = chain
        self.env = env

    def _argv(self, args: tuple[str, ...]) -> list[str]:
        return [sys.executable, "-m", "ailedger.cli", *args]

    def run(self, *args: str) -> str:
        done = subprocess.run(
            self._argv(args), env=self.env, capture_output=True, text=True, timeout=900
        )
        if done.returncode != 0:
            raise RuntimeError(f"ailedger {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def json(self, *args: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.run(*args, "--json"))
        return result

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self._argv(args), env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )


def _wait_http(
    url: str,
    process: subprocess.Popen[bytes],
    post: dict[str, Any] | None = None,
) -> None:
    import httpx

    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"the server for {url} exited early:\n{err}")
        try:
            if post is None:
                httpx.get(url, timeout=1)
            else:
                httpx.post(url, json=post, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {READY_TIMEOUT_S:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


def _write_random_file(path: Path, size: int) -> None:
    block = os.urandom(MIB)  # varied per MiB so nothing compresses or dedupes
    with path.open("wb") as f:
        for i in range(size // MIB):
            f.write(i.to_bytes(8, "big") + block[8:])


# ---------------------------------------------------------------- the two downloads


def plain_download(url: str, out: Path) -> int:
    """GET ``url`` with httpx, 1 MiB reads, into ``out`` (flush + fsync + rename)."""
    import httpx

    with tempfile.NamedTemporaryFile(dir=out.parent, prefix=".plain-", delete=False) as tmp:
        with httpx.stream("GET", url, timeout=60) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes(MIB):
                tmp.write(chunk)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, out)
    return out.stat().st_size


def _fetch_size(session: Any, dataset: bytes, grant: int, out: Path) -> int:
    from ailedger.sharing.requester import fetch

    return fetch(session, dataset, grant, out).size


def _timed(action: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    size = action()
    return time.perf_counter() - start, size


@contextlib.contextmanager
def _phase_timer(phases: dict[str, float]) -> Iterator[None]:
    """Wrap the steps ``requester.fetch`` calls, adding their wall time to ``phases``."""
    from ailedger.crypto import hpke
    from ailedger.sharing import requester
    from ailedger.store import objects

    def wrap(module: Any, name: str, label: str) -> Callable[..., Any]:
        original = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                phases[label] = phases.get(label, 0.0) + time.perf_counter() - start

        setattr(module, name, timed)
        return original  # type: ignore[no-any-return]

    targets = [
        (requester, "_download", "download (POST /v1/access, write + hash ciphertext)"),
        (hpke, "unwrap_data_key", "HPKE unwrap"),
        (objects, "decrypt_object", "decrypt_object (decrypt, write, fsync)"),
    ]
    saved = [(module, name, wrap(module, name, label)) for module, name, label in targets]
    try:
        yield
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


def _profile_fetch(session: Any, dataset: bytes, grant: int, out: Path, lines: int) -> None:
    from ailedger.sharing.requester import fetch

    phases: dict[str, float] = {}
    profiler = cProfile.Profile()
    start = time.perf_counter()
    os.sync()
    with _phase_timer(phases):
        profiler.enable()
        fetch(session, dataset, grant, out)
        profiler.disable()
    total = time.perf_counter() - start
    out.unlink()
    print(f"\nprofile of one gateway fetch (client side, under cProfile): {total:.2f} s")
    for label, seconds in phases.items():
        print(f"  {label:48s} {seconds:7.2f} s  {100 * seconds / total:5.1f}%")
    rest = total - sum(phases.values())
    print(
        f"  {'other (chain reads, signing, unlock key)':48s} {rest:7.2f} s  "
        f"{100 * rest / total:5.1f}%"
    )
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(lines)
    print(text.getvalue())


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="64 MiB dataset, for CI")
    parser.add_argument("--size-mib", type=int, help="dataset size in MiB (default 512)")
    parser.add_argument("--reps", type=int, default=3, help="runs of each side; best counts")
    parser.add_argument("--dir", type=Path, help="where the homes, dataset and downloads go")
    parser.add_argument(
        "--profile",
        type=int,
        metavar="LINES",
        default=0,
        help="also profile one fetch; print this many cProfile lines",
    )
    parser.add_argument("--serve-plain", nargs=2, metavar=("BLOB", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_plain:
        _serve_plain(Path(args.serve_plain[0]), int(args.serve_plain[1]))
        return
    size = (args.size_mib or (64 if args.quick else 512)) * MIB

    from ailedger.keys.home import NodeHome
    from ailedger.session import open_session
    from ailedger.settings import load_settings
    from ailedger.store.blobs import DirectoryBlobStore

    root = Path(tempfile.mkdtemp(prefix="ailedger-gateway-fetch-", dir=args.dir))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        chain_port, gateway_port, plain_port = _free_port(), _free_port(), _free_port()
        chain_url = f"http://127.0.0.1:{chain_port}"
        NodeHome.init(root / "owner", PASSPHRASE, scrypt_n=SCRYPT_N)
        NodeHome.init(root / "researcher", PASSPHRASE, scrypt_n=SCRYPT_N)
        owner = Party(root / "owner", None)
        researcher = Party(root / "researcher", chain_url)

        processes.append(owner.spawn("chain", "serve", "--port", str(chain_port)))
        _wait_http(
            chain_url,
            processes[-1],
            {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        )
        owner.run("account", "fund")
        researcher.run("account", "fund")

        source = root / "dataset.bin"
        _write_random_file(source, size)
        start = time.perf_counter()
        published = owner.json(
            "data", "publish", str(source), "--title", "benchmark", "--purpose", PURPOSE, "--auto"
        )
        print(
            f"published {size // MIB} MiB in {time.perf_counter() - start:.1f} s "
            f"(CLI, encrypt + register)"
        )
        dataset = bytes.fromhex(str(published["dataset"]).removeprefix("0x"))
        blob = DirectoryBlobStore(root / "owner" / "data" / "blobs").path_of(
            str(published["ciphertext_sha256"])
        )

        processes.append(
            owner.spawn("node", "start", "--port", str(gateway_port), "--anchor-every", "0")
        )
        _wait_http(f"http://127.0.0.1:{gateway_port}/v1/health", processes[-1])
        researcher.run("account", "register-key")
        requested = researcher.json(
            "data", "request", str(published["dataset"]), "--purpose", PURPOSE
        )
        if requested["status"] != "granted":
            raise RuntimeError(f"the request was not granted on payment: {requested}")
        grant = int(requested["request"])

        processes.append(
            subprocess.Popen(
                [sys.executable, __file__, "--serve-plain", str(blob), str(plain_port)],
                stderr=subprocess.PIPE,
            )
        )
        plain_url = f"http://127.0.0.1:{plain_port}"
        _wait_http(f"{plain_url}/health", processes[-1])

        downloads = root / "downloads"
        downloads.mkdir()
        settings = load_settings(home=root / "researcher", chain=chain_url)
        gateway_s: list[float] = []
        plain_s: list[float] = []
        with open_session(settings, unlock=True, passphrase=PASSPHRASE) as session:
            for rep in range(args.reps):
                os.sync()  # start each run with no dirty pages left by the one before
                out = downloads / f"plain-{rep}"
                seconds, got = _timed(partial(plain_download, f"{plain_url}/blob", out))
                if got != blob.stat().st_size:
                    raise RuntimeError(f"plain download got {got} of {blob.stat().st_size} bytes")
                plain_s.append(seconds)
                out.unlink()

                os.sync()
                out = downloads / f"fetched-{rep}"
                seconds, got = _timed(partial(_fetch_size, session, dataset, grant, out))
                if got != size:
                    raise RuntimeError(f"gateway fetch got {got} of {size} bytes")
                gateway_s.append(seconds)
                out.unlink()
                print(
                    f"  rep {rep + 1}: plain {size / plain_s[-1] / 1e6:7.1f} MB/s"
                    f"   gateway {size / gateway_s[-1] / 1e6:7.1f} MB/s"
                )
            if args.profile:
                _profile_fetch(session, dataset, grant, downloads / "profiled", args.profile)
        plain_rate = size / min(plain_s) / 1e6
        gateway_rate = size / min(gateway_s) / 1e6
        print(f"dataset: {size // MIB} MiB, best of {args.reps}, on loopback")
        print(f"plain HTTP download (same ciphertext, same server stack): {plain_rate:8.1f} MB/s")
        print(f"gateway fetch (download + sha256 + HPKE + decrypt):      {gateway_rate:8.1f} MB/s")
        print(f"ratio_vs_plain_http: {gateway_rate / plain_rate:.2f}")
    finally:
        for process in reversed(processes):
            _stop(process)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
