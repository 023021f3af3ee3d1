"""``ailedger health link``/``links`` and ``ailedger patient``, as a hospital and its patients
type them: one embedded chain shared by three homes (a hospital, a patient, a stranger).

The homes' commands run in this process through the real entry point; only how a command
opens its session is replaced, by one that returns the session of the home it names on the
shared chain (three homes cannot each open the same embedded chain directory)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import typer
from fhir.resources.R4B.consent import Consent
from tests.cli.test_cli import run

from ailedger.chain.connection import open_embedded
from ailedger.chain.transactions import fund_from_dev_account
from ailedger.demo.records import write_bundles
from ailedger.keys.home import NodeHome
from ailedger.session import Session
from ailedger.settings import load_settings

PASSPHRASE = "patient cli"


class Homes:
    def __init__(
        self,
        sessions: dict[str, Session],
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.sessions, self.capsys, self.monkeypatch = sessions, capsys, monkeypatch

    def address(self, name: str) -> str:
        return self.sessions[name].address

    def run(self, name: str, *args: str) -> tuple[int, str, str]:
        self.monkeypatch.setenv("AILEDGER_HOME", str(self.sessions[name].home.path))
        return run(list(args), self.capsys, self.monkeypatch)

    def json(self, name: str, *args: str) -> Any:
        code, out, err = self.run(name, *args, "--json")
        assert code == 0, (args, out, err)
        return json.loads(out)

    def refused(self, name: str, *args: str) -> str:
        code, _, err = self.run(name, *args)
        assert code == 1, err
        return " ".join(err.split())


@pytest.fixture
def homes(
    tmp_path: Path,
    contract_cache: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Homes]:
    from ailedger.cli import _common, data, health, patient

    monkeypatch.setenv("AILEDGER_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("AILEDGER_CACHE_DIR", str(contract_cache))
    monkeypatch.delenv("AILEDGER_CHAIN", raising=False)
    with open_embedded(tmp_path / "chain", contract_cache) as connection:
        sessions: dict[str, Session] = {}
        for name in ("hospital", "alice", "mallory"):
            home = NodeHome.init(tmp_path / name, PASSPHRASE, scrypt_n=2**12)
            settings = load_settings(home=home.path, cache_dir=contract_cache)
            sessions[name] = Session(
                settings, home, connection, home.unlock_account(PASSPHRASE), PASSPHRASE
            )
            fund_from_dev_account(connection.web3, sessions[name].address, 10**20)
        by_home = {s.home.path.resolve(): s for s in sessions.values()}

        @contextmanager
        def shared_session(ctx: typer.Context, *, unlock: bool) -> Iterator[Session]:
            yield by_home[_common.settings_from(ctx).home.resolve()]

        monkeypatch.setattr(health, "session", shared_session)
        monkeypatch.setattr(patient, "session", shared_session)
        monkeypatch.setattr(data, "session", shared_session)
        try:
            yield Homes(sessions, capsys, monkeypatch)
        finally:
            for session in sessions.values():
                session.close()


def test_a_hospital_links_a_patient_who_accepts_consents_and_exports_it(
    homes: Homes, tmp_path: Path
) -> None:
    bundles = write_bundles(tmp_path / "fhir", 3)
    assert homes.json("hospital", "health", "import", *map(str, bundles))["patients"] == 3
    alice = homes.address("alice")

    code, out, err = homes.run("hospital", "health", "link", "pat-2", alice)
    assert code == 0, err
    link_id = out.split("hand the patient this link id: ")[1].split()[0]
    assert f"ailedger patient accept {link_id}" in out
    assert homes.json("hospital", "health", "links")["links"][0]["status"] == "proposed"

    accepted = homes.json("alice", "patient", "accept", link_id)
    assert accepted == {
        "link_id": link_id,
        "hospital": homes.address("hospital"),
        "status": "active",
    }
    consent = homes.json(
        "alice", "patient", "consent", "--allow", "matchmaking", "--allow", "rare-disease-research"
    )
    assert consent["purposes"] == ["rare-disease-research", "matchmaking"]
    status = homes.json("alice", "patient", "status")
    assert status["links"] == [accepted] and status["claimable_base_units"] == "0"
    assert homes.json("hospital", "health", "links")["links"][0]["status"] == "active"

    exported = homes.json(
        "alice", "patient", "consent-export", "--out", str(tmp_path / "consent.json")
    )
    assert exported["status"] == "active"
    resource = json.loads((tmp_path / "consent.json").read_text())
    Consent.model_validate(resource)
    assert resource["patient"]["identifier"]["value"] == alice

    # Her withdrawal counts at the hospital's next export.
    before = homes.json("hospital", "health", "deidentify", "-o", str(tmp_path / "a.json"))
    _published_export_pays_her(homes, tmp_path / "a.json")
    homes.json("alice", "patient", "consent", "--withdraw", "rare-disease-research")
    after = homes.json("hospital", "health", "deidentify", "-o", str(tmp_path / "b.json"))
    assert after["records"] == before["records"] - 1


def _published_export_pays_her(homes: Homes, export: Path) -> None:
    """The hospital publishes the export and gives its patients 10 % of each sale; a
    researcher buys it; alice, the one linked patient, claims her share."""
    from ailedger.sharing.requester import request_access

    published = homes.json(
        "hospital", "data", "publish", str(export), "--title", "registry",
        "--purpose", "rare-disease-research", "--price", "10", "--auto",
    )  # fmt: skip
    shared = homes.json(
        "hospital", "health", "share-revenue", published["dataset"],
        "--records", str(export), "--bps", "1000",
    )  # fmt: skip
    assert (shared["added"], shared["unlinked"], shared["bps"]) == (1, 2, 1000)
    buyer = homes.sessions["mallory"]
    buyer.token.faucet(100 * 10**18)
    request_access(buyer, bytes.fromhex(published["dataset"][2:]), 1)
    assert homes.json("alice", "patient", "status")["claimable_base_units"] == str(10**18)
    assert homes.json("alice", "patient", "claim")["paid_base_units"] == str(10**18)


def test_refusals_say_what_happened_and_what_to_do(homes: Homes, tmp_path: Path) -> None:
    bundles = write_bundles(tmp_path / "fhir", 2)
    homes.json("hospital", "health", "import", *map(str, bundles))
    alice = homes.address("alice")
    link_id = homes.json("hospital", "health", "link", "pat-0", alice)["link_id"]

    assert "no patient 'nobody'" in homes.refused("hospital", "health", "link", "nobody", alice)
    assert "already linked" in homes.refused("hospital", "health", "link", "pat-0", alice)
    assert "not a wallet address" in homes.refused("hospital", "health", "link", "pat-1", "bob")
    stolen = homes.refused("mallory", "patient", "accept", link_id)
    assert f"names the wallet {alice}" in stolen and "accept it from the named wallet" in stolen
    assert "no link" in homes.refused("alice", "patient", "accept", "07" * 32)
    assert "64 hex digits" in homes.refused("alice", "patient", "accept", "xyz")
    assert "unknown purpose 'gossip'" in homes.refused(
        "alice", "patient", "consent", "--allow", "gossip"
    )
    assert "nothing to claim yet" in homes.refused("alice", "patient", "claim")


def test_the_patient_group_teaches_its_commands(homes: Homes) -> None:
    code, out, _ = homes.run("alice", "patient", "--help")
    assert code == 0
    for command in ("accept", "consent", "status", "claim", "consent-export", "end"):
        assert f" {command} " in out
    code, out, _ = homes.run("alice", "patient", "consent", "--help")
    assert code == 0 and "matchmaking" in out and "--withdraw" in out


def test_an_export_with_no_consenting_patient_says_why_and_writes_nothing(
    homes: Homes, tmp_path: Path
) -> None:
    out = tmp_path / "none.json"
    refusal = homes.refused("hospital", "health", "deidentify", "-o", str(out))
    assert "no patient here consents to research (0 stored)" in refusal
    assert "nothing was written" in refusal and not out.exists()
