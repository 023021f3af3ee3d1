"""job.toml validation, bundle hashing and safe packing."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from ailedger.compute.jobs import (
    JobBundle,
    JobSpecError,
    UnsafeBundleError,
    bundle_hash,
    load_bundle,
    pack_bundle,
    parse_job,
    unpack_bundle,
)

DS = "0x" + "ab" * 32
VALID = f"""
[job]
entry = "train.py"
runtime = "python-sklearn"
inputs = ["{DS}"]
seed = 7
deterministic = true

[resources]
cpu_cores = 2
ram_mb = 2048
gpu_mem_mb = 0
max_hours = 1.5

[market]
max_price_per_hour = "0.25"
deadline_hours = 24
redundancy = 3
"""


def write_bundle(root: Path, toml: str = VALID, files: dict[str, bytes] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "job.toml").write_text(toml)
    for name, data in (files if files is not None else {"train.py": b"p"}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_valid_job() -> None:
    spec = parse_job(VALID)
    assert spec.entry == "train.py" and spec.runtime == "python-sklearn"
    assert spec.inputs == (DS,) and spec.ram_mb == 2048 and spec.redundancy == 3
    assert spec.max_price_per_hour == 25 * 10**16 and spec.max_hours == 1.5
    assert spec.seed == 7 and spec.deterministic


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("ram_mb = 2048", "ram_mb = 'lots'", "[resources] ram_mb must be a positive integer"),
        ("ram_mb = 2048", "ram_mb = 0", "[resources] ram_mb"),
        ("cpu_cores = 2", "cpu_cores = true", "[resources] cpu_cores"),
        ("gpu_mem_mb = 0", "gpu_mem_mb = -1", "[resources] gpu_mem_mb"),
        ("max_hours = 1.5", "max_hours = 0", "[resources] max_hours"),
        ("redundancy = 3", "redundancy = 6", "[market] redundancy must be an integer 1..5"),
        ('max_price_per_hour = "0.25"', "max_price_per_hour = 0.25", "[market] max_price_per_hour"),
        (
            'max_price_per_hour = "0.25"',
            'max_price_per_hour = "cheap"',
            "[market] max_price_per_hour",
        ),
        ('max_price_per_hour = "0.25"', 'max_price_per_hour = "0"', "[market] max_price_per_hour"),
        ("deadline_hours = 24", "deadline_hours = 'soon'", "[market] deadline_hours"),
        (f'inputs = ["{DS}"]', 'inputs = ["0x12"]', "[job] inputs"),
        ('runtime = "python-sklearn"', 'runtime = "Py Thon!"', "[job] runtime"),
        ("seed = 7", "seed = 'x'", "[job] seed"),
        ("seed = 7\n", "", "[job] seed is required"),
        ("deterministic = true", "deterministic = 'yes'", "[job] deterministic"),
        ('entry = "train.py"', "entry = 3", "[job] entry"),
        ("ram_mb = 2048\n", "", "[resources] ram_mb is required"),
    ],
)
def test_malformed_field_is_named(old: str, new: str, field: str) -> None:
    assert old in VALID
    with pytest.raises(JobSpecError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_job(VALID.replace(old, new))


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("ram_mb = 2048", "ram_mb = 2048\nramm_mb = 4096", "ramm_mb"),
        ("[market]", "[markt]\n[market]", "markt"),
        ("[job]", "priority = 1\n[job]", "priority"),
    ],
)
def test_unknown_field_is_an_error(old: str, new: str, needle: str) -> None:
    with pytest.raises(JobSpecError, match=needle):
        parse_job(VALID.replace(old, new))


def test_not_toml() -> None:
    with pytest.raises(JobSpecError, match="not valid TOML"):
        parse_job("[job\n")


@pytest.mark.parametrize("entry", ["../evil.py", "/etc/passwd", "a/../../x.py", ""])
def test_entry_outside_bundle_refused(entry: str) -> None:
    with pytest.raises(JobSpecError, match=r"\[job\] entry"):
        parse_job(VALID.replace('entry = "train.py"', f'entry = "{entry}"'))


def test_entry_must_exist_and_symlinks_refused(tmp_path: Path) -> None:
    b = write_bundle(tmp_path / "b", files={"other.py": b""})
    with pytest.raises(JobSpecError, match="exists inside the bundle"):
        load_bundle(b)
    b2 = write_bundle(tmp_path / "b2", files={})
    (b2 / "train.py").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeBundleError, match="symlink"):
        load_bundle(b2)
    assert load_bundle(write_bundle(tmp_path / "ok")).entry == "train.py"


def test_bundle_hash_deterministic(tmp_path: Path) -> None:
    files = {"train.py": b"x = 1\n", "lib/util.py": b"y = 2\n", "data/a.txt": b"abc"}
    a = write_bundle(tmp_path / "a", files=files)
    b = write_bundle(tmp_path / "b", files=dict(reversed(list(files.items()))))
    os.utime(b / "train.py", (1, 1))
    os.chmod(b / "data" / "a.txt", 0o600)
    assert bundle_hash(a) == bundle_hash(b)
    (b / "data" / "a.txt").write_bytes(b"abd")
    assert bundle_hash(a) != bundle_hash(b)
    c = write_bundle(tmp_path / "c", files={**files, "lib/util.py": b"", "lib/util.pyy": b""})
    d = write_bundle(tmp_path / "d", files={**files, "lib/util.py": b"", "lib/util.p": b"y"})
    assert bundle_hash(c) != bundle_hash(d)


def test_pack_unpack_round_trip(tmp_path: Path) -> None:
    a = write_bundle(tmp_path / "a", files={"train.py": b"1", "z/y.py": b"2"})
    b = write_bundle(tmp_path / "b", files={"z/y.py": b"2", "train.py": b"1"})
    os.utime(a / "train.py", (5, 5))
    assert pack_bundle(a) == pack_bundle(b)
    spec = unpack_bundle(pack_bundle(a), tmp_path / "out").spec
    assert spec.entry == "train.py" and bundle_hash(tmp_path / "out") == bundle_hash(a)


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "device"])
def test_unsafe_tar_refused(tmp_path: Path, kind: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo({"dotdot": "../x", "absolute": "/tmp/x"}.get(kind, "x"))
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/shadow"
        elif kind == "device":
            info.type = tarfile.CHRTYPE
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(UnsafeBundleError):
        unpack_bundle(buf.getvalue(), tmp_path / "out")
    assert not (tmp_path / "x").exists()


def test_bundle_is_read_once_so_tar_and_hash_agree(tmp_path: Path) -> None:
    """A bundle edited after it was read cannot split the stored tar from the posted hash."""
    a = write_bundle(tmp_path / "a")
    read = JobBundle.read(a)
    (a / "train.py").write_text("print('swapped after validation')\n")
    unpacked = unpack_bundle(read.tar(), tmp_path / "out")
    assert unpacked.digest == read.digest
    assert unpacked.digest != bundle_hash(a)
    assert unpacked.spec == read.spec


def test_bundle_with_non_utf8_job_file_is_refused(tmp_path: Path) -> None:
    b = write_bundle(tmp_path / "b")
    (b / "job.toml").write_bytes(b"\xff\xfe[job]\n")
    with pytest.raises(JobSpecError, match="UTF-8"):
        JobBundle.read(b)
