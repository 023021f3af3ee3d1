"""The requester's job directory in its home: bundles it posted, logs and outputs it got.

``job submit`` (a CLI process) writes bundles here and the requester's node (another
process on the same home) serves them to assigned providers and files what they send
back. Everything is written with :func:`ailedger._durable.atomic_write`, so a crash leaves
either the whole file or nothing, and the two processes never see a half-written file::

    jobs/bundles/<bundle hash>.tar            the packed bundle (content-addressed)
    jobs/<job id>/logs/<provider>/<seq>.bin   HPKE-sealed log batches, in order
    jobs/<job id>/outputs/<provider>.bin      wrapped key + encrypted output tree
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ailedger._durable import atomic_write
from ailedger.compute.jobs import JobBundle
from ailedger.home_layout import HomeLayout

MAX_LOG_BATCH = 1 << 20
MAX_LOG_BATCHES = 100_000


class JobFiles:
    def __init__(self, home_path: Path) -> None:
        self.root = HomeLayout(home_path).jobs

    # ------------------------------------------------------------------ bundles

    def save_bundle(self, bundle: JobBundle) -> bytes:
        """Keep the bundle's tar under its hash (both from the same bytes). Returns the hash."""
        digest = bundle.digest
        target = self.bundle_path(digest)
        if not target.exists():
            _write_file(target, bundle.tar())
        return digest

    def bundle_path(self, digest: bytes) -> Path:
        return self.root / "bundles" / f"{digest.hex()}.tar"

    # --------------------------------------------------------------------- logs

    def log_dir(self, job_id: int, provider: str) -> Path:
        return self.root / str(job_id) / "logs" / provider.lower()

    def save_log_batch(self, job_id: int, provider: str, seq: int, sealed: bytes) -> None:
        _write_file(self.log_dir(job_id, provider) / f"{seq:08d}.bin", sealed)

    def log_batches(self, job_id: int) -> Iterator[tuple[str, int, bytes]]:
        """(provider, seq, sealed batch) in provider then sequence order."""
        base = self.root / str(job_id) / "logs"
        if not base.is_dir():
            return
        for provider_dir in sorted(base.iterdir()):
            for batch in sorted(provider_dir.glob("*.bin")):
                yield provider_dir.name, int(batch.stem), batch.read_bytes()

    # ------------------------------------------------------------------ outputs

    def output_path(self, job_id: int, provider: str) -> Path:
        return self.root / str(job_id) / "outputs" / f"{provider.lower()}.bin"


def _write_file(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, data)
