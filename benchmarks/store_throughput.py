"""Publish throughput of the encrypted store, next to plain SHA-256 of the same file.

Publish = ``store.objects.encrypt_object``: read the file once, encrypt it with STREAM /
AES-256-GCM (64 KiB segments), hash the ciphertext with SHA-256 and write it to a
``DirectoryBlobStore`` (fsync + rename). The reference is ``hashlib.sha256`` over the
same file with 1 MiB reads: the least work any content-addressed publish must do. A
third line, for reading the result, puts the file into the store unencrypted
(``put_stream``: hash + write + fsync): the I/O ceiling of this machine. Each
side runs in its own child process so its peak RSS (``ru_maxrss``) is its own; the file
is written first, so both read it from the page cache.

``--quick`` uses a 256 MiB file, the full run 2 GiB. Last line:
``ratio_vs_sha256: <publish MB/s / sha256 MB/s>``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1024 * 1024


def _child(kind: str, source: Path, store_dir: Path) -> None:
    start = time.perf_counter()
    if kind == "sha256":
        digest = hashlib.sha256()
        with source.open("rb") as f:
            while chunk := f.read(MIB):
                digest.update(chunk)
    elif kind == "copy":
        # I/O ceiling: the same read + write + fsync + rename with no crypto at all.
        from ailedger.store.blobs import DirectoryBlobStore

        with source.open("rb") as f:
            DirectoryBlobStore(store_dir).put_stream(f)
    else:
        from ailedger.store.blobs import DirectoryBlobStore
        from ailedger.store.objects import encrypt_object

        encrypt_object(source, DirectoryBlobStore(store_dir), object_id=bytes(32), version=1)
    elapsed = time.perf_counter() - start
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": elapsed, "peak_rss_mib": rss_kib / 1024}))


def _run_child(kind: str, source: Path, store_dir: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(source), str(store_dir)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _write_random_file(path: Path, size: int) -> None:
    block = os.urandom(MIB)  # one random MiB, varied per block so nothing dedupes
    with path.open("wb") as f:
        for i in range(size // MIB):
            f.write(i.to_bytes(8, "big") + block[8:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="256 MiB file, for CI")
    parser.add_argument("--size-mib", type=int, help="file size in MiB (default 2048)")
    parser.add_argument("--dir", type=Path, help="where the temporary file and store go")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    size_mib = args.size_mib or (256 if args.quick else 2048)
    work = Path(tempfile.mkdtemp(prefix="ailedger-bench-", dir=args.dir))
    try:
        source = work / "data.bin"
        _write_random_file(source, size_mib * MIB)
        ref = _run_child("sha256", source, work / "store")
        copy = _run_child("copy", source, work / "copy-store")
        pub = _run_child("publish", source, work / "store")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ref_rate = size_mib * MIB / 1e6 / ref["seconds"]
    pub_rate = size_mib * MIB / 1e6 / pub["seconds"]
    print(f"file size          {size_mib} MiB")
    print(f"sha256 only        {ref_rate:8.1f} MB/s  peak RSS {ref['peak_rss_mib']:.0f} MiB")
    copy_rate = size_mib * MIB / 1e6 / copy["seconds"]
    print(f"copy into store    {copy_rate:8.1f} MB/s  (I/O ceiling: sha256 + write, no crypto)")
    print(f"publish (enc+hash) {pub_rate:8.1f} MB/s  peak RSS {pub['peak_rss_mib']:.0f} MiB")
    print(f"ratio_vs_sha256: {pub_rate / ref_rate:.2f}")


if __name__ == "__main__":
    main()
