"""A corpus of hostile command lines: each must be refused in one ``error:`` line.

``{name}`` in an argument is a file or directory that :func:`write_hostile_files` makes.
Cases whose parsing could crash the interpreter itself (deep nesting) are kept apart in
:data:`CRASHERS`, to run in a subprocess: a segfault would take the test run with it.
"""

from __future__ import annotations

from pathlib import Path

ADDRESS = "0x" + "ab" * 20
DATASET = "0x" + "00" * 32
HUGE = "1" + "0" * 80
DEEP = "[" * 100_000 + "]" * 100_000


def write_hostile_files(root: Path) -> dict[str, str]:
    """The files the corpus names, made under ``root``; returns name -> path."""
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "small": b'{"a": 1}\n',
        "binary": bytes(range(256)) * 8,
        "deep.json": DEEP.encode(),
        "deep.ndjson": DEEP.encode() + b"\n",
        "deep-object.json": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        "huge-int.json": b"1" * 5000,
        "not-an-mme.json": b'{"patient": [1, 2, 3]}',
        "list.json": b"[]",
    }
    paths = {}
    for name, data in files.items():
        (root / name).write_bytes(data)
        paths[name] = str(root / name)
    bundles = {
        "binary-bundle": bytes(range(256)) * 8,
        "deep-bundle": b"a = " + DEEP.encode(),
        "huge-bundle": b"# " + b"x" * 100_000,
        "empty-bundle": b"",
    }
    for name, toml in bundles.items():
        (root / name).mkdir(exist_ok=True)
        (root / name / "job.toml").write_bytes(toml)
        paths[name] = str(root / name)
    paths["missing"] = str(root / "no-such-file")
    paths["missing-dir"] = str(root / "no-such-dir" / "out")
    return paths


AMOUNTS = [
    "1e400",
    HUGE,
    "1e100",
    "9" * 5000,
    "-1",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e-400",
    "1e-999999999",
    "1e999999999",
    "0.0000000000000000001",
    "",
    " ",
    "lots",
    "0x10",
    "1,5",
    "\uff11",  # FULLWIDTH DIGIT ONE: Decimal() would read it as 1
    "1\x00",
    "[/bold]",
]

ADDRESSES = [
    "0xAbAbabababababababababababababababababab",  # mixed case, wrong checksum
    "0x" + "ab" * 19,
    "0x" + "ab" * 21,
    "0x" + "zz" * 20,
    "ab" * 20,
    "0X" + "ab" * 20,
    "",
    "0x",
    "0x" + "ab" * 20 + "\n",
    "0x" + "a" * 5000,
    "vitalik.eth",
]

IDS = ["-1", "1.5", "x", HUGE, "2" * 100, "1e3", "0x10", "", "٣"]

DATASET_IDS = [
    "0x" + "g" * 64,
    "0x" + "00" * 31,
    "0x" + "00" * 33,
    "",
    "0x",
    DATASET + "\n",
    "0x" + "٣" * 64,
]

DURATIONS = ["0d", "-1d", "1y", "d", "1", "99999999999999999999999999999999999999d", "36501d"]
DURATIONS += ["٣d", "²d", "1.5h", "", " 1d", "1e3s"]

PURPOSES = ["nope", "MODEL-TRAINING", "[/x]", "model-training\x00"]

PUBLISH = ["data", "publish", "{small}", "--title", "t", "--purpose", "model-training"]


def _cases() -> list[list[str]]:
    cases: list[list[str]] = []
    for amount in AMOUNTS:
        cases += [
            ["token", "transfer", "--", ADDRESS, amount],
            ["token", "faucet", "--", amount],
            ["account", "fund", "--amount", amount],
            [*PUBLISH, "--price", amount],
            ["provider", "start", "--price", amount],
            ["provider", "start", "--stake", amount],
            ["provider", "stake", "--", amount],
            ["provider", "unstake", "--", amount],
            ["provider", "offer", "--price", amount],
        ]
    for address in ADDRESSES:
        cases += [
            ["token", "transfer", "--", address, "1"],
            ["token", "balance", "--", address],
            ["data", "allow-host", DATASET, "--", address],
            ["audit", "verify", "--node", address],
        ]
        if address:  # an empty --owner is the default: every owner
            cases.append(["data", "list", "--owner", address])
    for id_ in IDS:
        cases += [
            ["data", "grant", "--", id_],
            ["data", "deny", "--", id_],
            ["data", "revoke", "--", id_],
            ["data", "fetch", DATASET, "--grant", id_, "-o", "{missing}"],
            ["data", "receipt", DATASET, "--", id_],
            ["job", "status", "--", id_],
            ["job", "logs", "--", id_],
            ["job", "result", "--", id_, "-o", "{missing}"],
            ["job", "accept", "--", id_],
            ["job", "dispute", "--", id_],
            ["job", "cancel", "--", id_],
        ]
    for dataset in DATASET_IDS:
        cases += [
            ["data", "show", "--", dataset],
            ["data", "request", "--purpose", "model-training", "--", dataset],
            ["data", "fetch", "--grant", "1", "-o", "{missing}", "--", dataset],
            ["data", "receipt", "--", dataset, "1"],
            ["data", "allow-algorithm", "--", dataset, DATASET],
            ["data", "allow-algorithm", DATASET, "--", dataset],
            ["data", "output-policy", "--", dataset],
        ]
    for duration in DURATIONS:
        cases.append([*PUBLISH, "--duration", duration])
    for purpose in PURPOSES:
        cases += [
            ["data", "publish", "{small}", "--title", "t", "--purpose", purpose],
            ["data", "request", DATASET, "--purpose", purpose],
            ["data", "list", "--purpose", purpose],
            ["job", "submit", "{small}", "--purpose", purpose],
        ]
    for reads in ["-1", HUGE, str(2**63), "x", "1.5"]:
        cases.append([*PUBLISH, "--max-reads", reads])
    cases += [
        [*PUBLISH[:2], "{missing}", *PUBLISH[3:]],
        ["data", "output-policy", DATASET, "--max-bytes", "-1"],
        ["data", "output-policy", DATASET, "--max-bytes", HUGE],
        ["data", "output-policy", DATASET, "--min-cell-size", "0"],
        ["data", "output-policy", DATASET, "--min-cell-size", "-1"],
        ["data", "output-policy", DATASET, "--min-cell-size", HUGE],
        ["data", "output-policy", DATASET, "--min-cell-size", "nan"],
        ["health", "import", "{binary}"],
        ["health", "import", "{missing}"],
        ["health", "import", "{huge-int.json}"],
        ["health", "import", "{list.json}"],
        ["health", "match", "--query", "{binary}"],
        ["health", "match", "--query", "{missing}"],
        ["health", "match", "--query", "{huge-int.json}"],
        ["health", "match", "--query", "{not-an-mme.json}"],
        ["health", "match", "--query", "{list.json}"],
        ["health", "match", "--hpo", "HP:0001250", "--limit", "-5"],
        ["health", "match", "--hpo", "HP:0001250", "--limit", HUGE],
        ["health", "diagnose", "--hpo", "garbage"],
        ["health", "diagnose", "--hpo", "HP:0001250", "--limit", "0"],
        ["health", "deidentify", "-o", "{missing-dir}"],
        ["health", "deidentify", "-o", "{small}"],
        ["health", "deidentify", "-o", "{missing}", "--k-threshold", "-1"],
        ["job", "check", "{binary-bundle}"],
        ["job", "check", "{deep-bundle}"],
        ["job", "check", "{huge-bundle}"],
        ["job", "check", "{empty-bundle}"],
        ["job", "check", "{missing}"],
        ["job", "check", "{small}"],
        ["job", "submit", "{binary-bundle}"],
        ["job", "submit", "{missing}", "--wait", "nan"],
        ["job", "submit", "{missing}", "--wait", "-1"],
        ["job", "submit", "{missing}", "--collect", "inf"],
        ["job", "submit", "{missing}", "--min-reputation", HUGE],
        ["provider", "start", "--max-jobs", "-1"],
        ["provider", "start", "--poll", "0"],
        ["provider", "start", "--poll", "nan"],
        ["provider", "start", "--max-output-mb", "0"],
        ["provider", "start", "--runtime", "nonsense"],
        ["provider", "start", "--runtime", "x={missing}"],
        ["health", "token", "issue", ""],
        ["health", "token", "issue", "x" * 100_000],
        ["health", "token", "issue", "peer\nname"],
        ["health", "diagnose", "--hpo", "HP:" + "9" * 5000],
        ["chain", "serve", "--port", "-1"],
        ["chain", "serve", "--port", "65536"],
        ["chain", "deploy", "--bid-window", "0"],
        ["node", "start", "--port", HUGE],
        ["node", "start", "--anchor-every", "nan"],
        ["node", "start", "--auditor", "0x12"],
        ["node", "start", "--auditor", "0x" + "Ab" * 20],
        ["node", "login-link", "--port", HUGE],
        ["node", "login-link", "--port", "0"],
        ["--home", "{missing}", "node", "login-link"],
        ["--chain", "ftp://x", "token", "balance"],
        ["--chain", "http://[::1", "token", "balance"],
        ["--chain", "http://" + "a" * 5000, "token", "balance"],
        ["--home", "{small}", "account", "show"],
        ["--home", "{missing}", "account", "show"],
        ["data"],
        ["no-such-command"],
        ["data", "publish"],
    ]
    return cases


HOSTILE: list[list[str]] = _cases()

CRASHERS: list[list[str]] = [
    ["health", "import", "{deep.json}"],
    ["health", "import", "{deep.ndjson}"],
    ["health", "import", "{deep-object.json}"],
    ["health", "match", "--query", "{deep.json}"],
]
