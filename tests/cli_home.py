"""A home's ``ailedger`` commands run in the test's process, with that home's environment
(which spares a Python start per command); its chain and node run as processes."""

from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace
from typing import Any

import pytest

from tests.cli.test_cli import run
from tests.processes import Party


class Home:
    """One home's commands, run in this process with that home's environment."""

    def __init__(
        self,
        party: Party,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.party, self.capsys, self.monkeypatch = party, capsys, monkeypatch

    def init(self) -> None:
        """The home, written as `ailedger init` would (see :meth:`Party.init`)."""
        self.party.init()

    def run(self, *args: str, ok: bool = True) -> SimpleNamespace:
        for name in ("AILEDGER_HOME", "AILEDGER_PASSPHRASE", "AILEDGER_CACHE_DIR"):
            self.monkeypatch.setenv(name, self.party.env[name])
        if "AILEDGER_CHAIN" in self.party.env:
            self.monkeypatch.setenv("AILEDGER_CHAIN", self.party.env["AILEDGER_CHAIN"])
        else:
            self.monkeypatch.delenv("AILEDGER_CHAIN", raising=False)
        code, out, err = run(list(args), self.capsys, self.monkeypatch)
        if ok:
            assert code == 0, (args, out, err)
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return self.party.spawn(*args)
