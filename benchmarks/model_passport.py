"""Model passport signing time, against hashing the same files with hashlib.sha256.

Figures, each measured in the same run on the same files (page cache warm for both sides):

* the reference: SHA-256 of every weight file with ``hashlib.sha256``, one file after
  another (the least any signer of per-file SHA-256 digests must do);
* a first signing with ``sign_passport`` (card and lineage written, every file hashed,
  statement signed), and model-signing's own stock signing for comparison;
* re-signing after a 1 KB edit of the card (only the card is read again: goal < 1 s);
* verification with ``verify_passport`` (the stock verifier re-hashes everything).

1 GiB of random weights (8 files of 128 MiB); ``--quick``: 64 MiB. The last line is
``passport_ratio_vs_sha256: x``, reference time over signing time (goal >= 0.8).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from model_signing import signing

from ailedger.ai.lineage import DatasetUse, Evaluation, Lineage, TrainingJob
from ailedger.ai.passport import passport_key, sign_passport, verify_passport

H = "0x" + "ab" * 32
LINEAGE = Lineage(
    "bench-model",
    "1",
    (TrainingJob(1, H),),
    (DatasetUse(H, 1),),
    (),
    Evaluation(H, {"auc": 0.9}),
    1_780_000_000,
)


def write_weights(directory: Path, files: int, size: int) -> None:
    directory.mkdir(parents=True)
    long_ago = (1_700_000_000 * 10**9,) * 2
    for i in range(files):
        path = directory / f"weights-{i:02d}.bin"
        with path.open("wb") as f:
            for _ in range(size // (8 << 20)):
                f.write(os.urandom(8 << 20))
        # Weights are written long before they are signed; a file written within the
        # filesystem clock's current tick is re-hashed each time (see ai/_manifest.py).
        os.utime(path, ns=long_ago)


def sha256_reference(directory: Path) -> float:
    started = time.perf_counter()
    for path in sorted(directory.glob("weights-*.bin")):
        digest = hashlib.sha256()
        with path.open("rb", buffering=0) as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        digest.hexdigest()
    return time.perf_counter() - started


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 MiB instead of 1 GiB")
    args = parser.parse_args()
    files, size = (8, 8 << 20) if args.quick else (8, 128 << 20)
    with tempfile.TemporaryDirectory(prefix="ailedger-bench-passport-") as scratch:
        root = Path(scratch)
        model = root / "model"
        write_weights(model, files, size)
        key, public_pem = passport_key(root / "home")
        card = "# bench-model\n\n" + "x" * 1000 + "\n"
        reference = min(sha256_reference(model) for _ in range(2))
        first = timed(lambda: sign_passport(model, LINEAGE, card, key, root / "a.sig"))
        edited = card.replace("x" * 1000, "y" * 1000)  # a 1 KB edit of the card
        resign = timed(lambda: sign_passport(model, LINEAGE, edited, key, root / "b.sig"))
        verify = timed(lambda: verify_passport(model, root / "b.sig", public_pem))
        pem = root / "stock.pem"
        pem.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        stock_config = signing.Config()  # type: ignore[no-untyped-call]
        stock_config.use_elliptic_key_signer(private_key=pem)
        stock = timed(lambda: stock_config.sign(model, root / "stock.sig"))
        # The first signing's figure is against a cold cache of digests, the fair case:
        # sign once more from a fresh cache to take the better of two, like the reference.
        (root / ".model.ailedger-digests.json").unlink()
        second = timed(lambda: sign_passport(model, LINEAGE, card, key, root / "c.sig"))
        sign = min(first, second)
        total = files * size
        print(f"model: {files} files, {total / 2**20:.0f} MiB, {os.cpu_count()} CPUs")
        print(
            f"reference hashlib.sha256, one file after another: {reference:.3f} s "
            f"({total / reference / 2**20:.0f} MiB/s)"
        )
        print(f"sign_passport, every file hashed: {sign:.3f} s ({total / sign / 2**20:.0f} MiB/s)")
        print(f"model-signing stock sign (key): {stock:.3f} s")
        print(f"re-sign after a 1 KB card edit: {resign:.3f} s")
        print(f"verify_passport (stock verifier, all files): {verify:.3f} s")
        print(f"passport_ratio_vs_sha256: {reference / sign:.2f}")


if __name__ == "__main__":
    main()
