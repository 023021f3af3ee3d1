"""The requester's job inbox (who may fetch and upload what) and its job directory."""

from __future__ import annotations

import hashlib
import io
import tarfile
import warnings
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from ailedger.compute.jobs import JobBundle, JobSpecError, bundle_hash, pack_bundle
from ailedger.compute.requester.files import MAX_LOG_BATCH, MAX_LOG_BATCHES, JobFiles
from ailedger.compute.requester.http import MAX_UPLOAD
from ailedger.compute.requester.inbox import JobInbox
from ailedger.errors import RequestRefusedError
from ailedger.node.app import create_app
from ailedger.peer.signing import sign_request
from ailedger.peer.wire import SIGNATURE_HEADER

JOB_TOML = """
[job]
entry = "main.py"
runtime = "python-sklearn"
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

ME = Account.create()
STRANGER = Account.create()
ASSIGNED = Account.create()
REGISTERED = Account.create()  # registered, bidding, not (yet) assigned
UNREGISTERED = Account.create()
JOB, OTHERS_JOB, UNKNOWN_JOB = 7, 8, 9


class FakeMarket:
    def __init__(self, bundle: bytes) -> None:
        self.jobs: dict[int, dict[str, Any]] = {
            JOB: {"requester": ME.address.lower(), "bundle_hash": bundle},
            OTHERS_JOB: {"requester": STRANGER.address, "bundle_hash": bundle},
        }
        self.assigned = {JOB: [ASSIGNED.address], OTHERS_JOB: [ASSIGNED.address]}
        self.registered = {ASSIGNED.address, REGISTERED.address}

    def info(self, job_id: int) -> dict[str, Any] | None:
        return self.jobs.get(job_id)

    def assignments(self, job_id: int) -> list[dict[str, Any]]:
        return [{"provider": p} for p in self.assigned.get(job_id, [])]

    def provider(self, address: str) -> dict[str, Any]:
        return {"registered": address in self.registered}


def make_bundle(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "job.toml").write_text(JOB_TOML)
    (root / "main.py").write_text("print('hello')\n")
    return root


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "bundle")


@pytest.fixture
def inbox(tmp_path: Path, bundle_dir: Path) -> JobInbox:
    files = JobFiles(tmp_path / "home")
    digest = files.save_bundle(JobBundle.read(bundle_dir))
    market = FakeMarket(digest)
    return JobInbox(files, ME.address, market, market)  # type: ignore[arg-type]


def refused(status: int, call: Any, *args: Any) -> RequestRefusedError:
    """``call`` refuses, with the error the node answers with HTTP ``status``."""
    with pytest.raises(RequestRefusedError) as info:
        call(*args)
    assert info.value.http_status == status, info.value.reason
    return info.value


# --------------------------------------------------------------------- job files


def test_save_bundle(tmp_path: Path, bundle_dir: Path) -> None:
    files = JobFiles(tmp_path / "home")
    digest = files.save_bundle(JobBundle.read(bundle_dir))
    assert digest == bundle_hash(bundle_dir)
    assert files.bundle_path(digest).read_bytes() == pack_bundle(bundle_dir)
    assert files.save_bundle(JobBundle.read(bundle_dir)) == digest  # idempotent
    assert [p.name for p in files.bundle_path(digest).parent.iterdir()] == [f"{digest.hex()}.tar"]


def test_save_bundle_validates(tmp_path: Path, bundle_dir: Path) -> None:
    (bundle_dir / "main.py").unlink()
    files = JobFiles(tmp_path / "home")
    with pytest.raises(JobSpecError):
        files.save_bundle(JobBundle.read(bundle_dir))
    assert not files.root.exists()


def test_log_batches_in_order(tmp_path: Path) -> None:
    files = JobFiles(tmp_path / "home")
    assert list(files.log_batches(JOB)) == []
    a, b = sorted([ASSIGNED.address, REGISTERED.address], key=str.lower)
    for seq in (10, 2, 0, 1):  # out of order, and 10 after 2 in text order
        files.save_log_batch(JOB, b, seq, f"b{seq}".encode())
    files.save_log_batch(JOB, a, 5, b"a5")
    files.save_log_batch(JOB + 1, a, 0, b"other job")
    assert list(files.log_batches(JOB)) == [
        (a.lower(), 5, b"a5"),
        (b.lower(), 0, b"b0"),
        (b.lower(), 1, b"b1"),
        (b.lower(), 2, b"b2"),
        (b.lower(), 10, b"b10"),
    ]


# ------------------------------------------------------------------------- spec


def test_spec_for_registered_provider(inbox: JobInbox) -> None:
    assert inbox.spec(JOB, REGISTERED.address) == JOB_TOML.encode()


def test_spec_refusals(inbox: JobInbox) -> None:
    refused(404, inbox.spec, OTHERS_JOB, REGISTERED.address)
    refused(404, inbox.spec, UNKNOWN_JOB, REGISTERED.address)
    refused(401, inbox.spec, JOB, None)
    refused(403, inbox.spec, JOB, UNREGISTERED.address)


def test_unknown_job_is_404_before_401(inbox: JobInbox) -> None:
    refused(404, inbox.spec, UNKNOWN_JOB, None)
    refused(404, inbox.bundle, UNKNOWN_JOB, None)


# ----------------------------------------------------------------------- bundle


def test_bundle_for_assigned_provider(inbox: JobInbox, bundle_dir: Path) -> None:
    path = inbox.bundle(JOB, ASSIGNED.address)
    assert path.read_bytes() == pack_bundle(bundle_dir)
    with tarfile.open(fileobj=io.BytesIO(path.read_bytes())) as tar:
        assert sorted(tar.getnames()) == ["job.toml", "main.py"]


def test_bundle_refusals(inbox: JobInbox) -> None:
    refused(404, inbox.bundle, OTHERS_JOB, ASSIGNED.address)  # assigned, but not our job
    refused(404, inbox.bundle, UNKNOWN_JOB, ASSIGNED.address)
    refused(401, inbox.bundle, JOB, None)
    refused(403, inbox.bundle, JOB, REGISTERED.address)  # registered is not enough
    refused(403, inbox.bundle, JOB, UNREGISTERED.address)


def test_bundle_gone(inbox: JobInbox) -> None:
    digest = bytes(inbox.market.info(JOB)["bundle_hash"])  # type: ignore[index]
    inbox.files.bundle_path(digest).unlink()
    refused(410, inbox.bundle, JOB, ASSIGNED.address)
    refused(410, inbox.spec, JOB, REGISTERED.address)


# ------------------------------------------------------------------------- logs


def test_logs(inbox: JobInbox) -> None:
    inbox.log(JOB, ASSIGNED.address, 1, b"second")
    inbox.log(JOB, ASSIGNED.address, 0, b"first")
    inbox.log(JOB, ASSIGNED.address, MAX_LOG_BATCHES - 1, b"x" * MAX_LOG_BATCH)
    got = list(inbox.files.log_batches(JOB))
    assert [(p, s) for p, s, _ in got] == [
        (ASSIGNED.address.lower(), 0),
        (ASSIGNED.address.lower(), 1),
        (ASSIGNED.address.lower(), MAX_LOG_BATCHES - 1),
    ]
    assert got[0][2] == b"first" and got[1][2] == b"second"


def test_log_refusals(inbox: JobInbox) -> None:
    refused(404, inbox.log, OTHERS_JOB, ASSIGNED.address, 0, b"x")
    refused(401, inbox.log, JOB, None, 0, b"x")
    refused(403, inbox.log, JOB, REGISTERED.address, 0, b"x")
    refused(413, inbox.log, JOB, ASSIGNED.address, 0, b"x" * (MAX_LOG_BATCH + 1))
    refused(413, inbox.log, JOB, ASSIGNED.address, -1, b"x")
    refused(413, inbox.log, JOB, ASSIGNED.address, MAX_LOG_BATCHES, b"x")
    assert list(inbox.files.log_batches(JOB)) == []


# ----------------------------------------------------------------------- output


def test_output_replaces_atomically(inbox: JobInbox, tmp_path: Path) -> None:
    for data in (b"first upload", b"second upload"):
        upload = tmp_path / "upload.bin"
        upload.write_bytes(data)
        inbox.output(JOB, ASSIGNED.address, upload)
        assert not upload.exists()  # moved, not copied
        target = inbox.files.output_path(JOB, ASSIGNED.address)
        assert target.read_bytes() == data
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_output_refusals(inbox: JobInbox, tmp_path: Path) -> None:
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"data")
    refused(404, inbox.output, OTHERS_JOB, ASSIGNED.address, upload)
    refused(401, inbox.output, JOB, None, upload)
    refused(403, inbox.output, JOB, REGISTERED.address, upload)
    assert upload.exists()
    assert not (inbox.files.root / str(JOB)).exists()


# ------------------------------------------------------------------------- HTTP


@pytest.fixture
def client(inbox: JobInbox) -> Any:
    with warnings.catch_warnings():
        # starlette deprecates httpx in favour of httpx2, which is not installed here
        warnings.filterwarnings("ignore", message=".*httpx.*deprecated")
        from fastapi.testclient import TestClient

    with TestClient(create_app(jobs=inbox)) as client:
        yield client


def headers(account: Any, inbox: JobInbox, method: str, path: str, body: bytes = b"") -> dict:
    return {SIGNATURE_HEADER: sign_request(account, inbox.me, method, path, body)}


def test_http_bundle(client: Any, inbox: JobInbox, bundle_dir: Path) -> None:
    path = f"/v1/jobs/{JOB}/bundle"
    ok = client.get(path, headers=headers(ASSIGNED, inbox, "GET", path))
    assert ok.status_code == 200 and ok.content == pack_bundle(bundle_dir)
    assert client.get(path).status_code == 401
    other = headers(ASSIGNED, inbox, "GET", f"/v1/jobs/{JOB}/spec")
    assert client.get(path, headers=other).status_code == 401
    assert client.get(path, headers=headers(REGISTERED, inbox, "GET", path)).status_code == 403
    # a latin-1 byte that str.isdigit() accepts but int() refuses: 401, not a 500
    ok_header = headers(ASSIGNED, inbox, "GET", path)[SIGNATURE_HEADER]
    _, claimed, _, sig = ok_header.split(".")
    garbage = {SIGNATURE_HEADER: f"ailedger-req1.{claimed}.\xb2.{sig}".encode("latin-1")}
    assert client.get(path, headers=garbage).status_code == 401


def test_http_spec(client: Any, inbox: JobInbox) -> None:
    path = f"/v1/jobs/{JOB}/spec"
    ok = client.get(path, headers=headers(REGISTERED, inbox, "GET", path))
    assert ok.status_code == 200 and ok.content == JOB_TOML.encode()
    bad = client.get(path, headers=headers(UNREGISTERED, inbox, "GET", path))
    assert bad.status_code == 403 and "not a registered provider" in bad.json()["error"]


def test_http_logs(client: Any, inbox: JobInbox) -> None:
    path = f"/v1/jobs/{JOB}/logs/3"
    body = b"sealed batch"
    ok = client.post(path, content=body, headers=headers(ASSIGNED, inbox, "POST", path, body))
    assert ok.status_code == 200
    tampered = client.post(
        path, content=body + b"!", headers=headers(ASSIGNED, inbox, "POST", path, body)
    )
    assert tampered.status_code == 401
    big = b"x" * (MAX_LOG_BATCH + 1)
    too_big = client.post(path, content=big, headers=headers(ASSIGNED, inbox, "POST", path, big))
    assert too_big.status_code == 413
    assert list(inbox.files.log_batches(JOB)) == [(ASSIGNED.address.lower(), 3, body)]


def test_http_output(client: Any, inbox: JobInbox) -> None:
    path = f"/v1/jobs/{JOB}/output"
    body = b"wrapped key and ciphertext" * 100
    target = inbox.files.output_path(JOB, ASSIGNED.address)

    def leftovers() -> list[str]:
        return [p.name for p in inbox.files.root.iterdir() if p.name.startswith(".upload-")]

    tampered = client.put(
        path, content=body + b"!", headers=headers(ASSIGNED, inbox, "PUT", path, body)
    )
    assert tampered.status_code == 401 and not target.exists() and leftovers() == []
    stranger = client.put(path, content=body, headers=headers(REGISTERED, inbox, "PUT", path, body))
    assert stranger.status_code == 403 and not target.exists() and leftovers() == []

    ok = client.put(path, content=body, headers=headers(ASSIGNED, inbox, "PUT", path, body))
    assert ok.status_code == 200 and ok.json() == {"ok": True, "bytes": len(body)}
    assert target.read_bytes() == body and leftovers() == []
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(body).digest()
    assert len(body) < MAX_UPLOAD
