"""Output hashing, exit records and the compute-to-data release policy."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from ailedger.compute import outputs
from ailedger.compute.jobs import UnsafeBundleError, bundle_hash
from ailedger.compute.outputs import (
    EXIT_FILE,
    MAX_AGGREGATE_ARRAY,
    MAX_AGGREGATE_NUMBERS,
    OutputPolicyViolation,
    ReleaseRules,
    apply_output_policy,
    output_hash,
    read_exit_record,
    tree_size,
    withhold,
    write_exit_record,
)

AGG = ReleaseRules(max_output_bytes=1 << 20, aggregate_only=True)
ANY = ReleaseRules(max_output_bytes=1 << 20, aggregate_only=False)


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def write_json(root: Path, name: str, value: object) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_text(json.dumps(value))
    return path


FILES = {"a.json": b"{}", "sub/b.bin": b"\x00\x01", "sub/deeper/c.txt": b"hello", "empty": b""}


# ------------------------------------------------------------------ output_hash


def test_hash_ignores_mtimes_and_creation_order(tmp_path: Path) -> None:
    one = make_tree(tmp_path / "one", FILES)
    two = make_tree(tmp_path / "two", dict(reversed(list(FILES.items()))))
    os.utime(two / "sub" / "b.bin", (1, 1))
    os.utime(one / "a.json", (2_000_000_000, 2_000_000_000))
    assert output_hash(one) == output_hash(two)


def test_hash_changes_with_content_or_names(tmp_path: Path) -> None:
    base = output_hash(make_tree(tmp_path / "base", FILES))
    content = output_hash(make_tree(tmp_path / "c", {**FILES, "empty": b"x"}))
    renamed = dict(FILES)
    renamed["sub/b2.bin"] = renamed.pop("sub/b.bin")
    name = output_hash(make_tree(tmp_path / "n", renamed))
    extra = output_hash(make_tree(tmp_path / "e", {**FILES, "more": b""}))
    assert len({base, content, name, extra}) == 4


def test_hash_is_not_the_bundle_hash(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t", FILES)
    assert output_hash(tree) != bundle_hash(tree)
    assert len(output_hash(tree)) == 32


def test_tree_size(tmp_path: Path) -> None:
    assert tree_size(make_tree(tmp_path / "t", FILES)) == sum(map(len, FILES.values()))


# ------------------------------------------------------------------ exit record


def test_exit_record_round_trip(tmp_path: Path) -> None:
    write_exit_record(tmp_path, 3, "exited")
    assert read_exit_record(tmp_path) == {"exit_code": 3, "reason": "exited"}
    write_exit_record(tmp_path, None, "timeout")
    assert read_exit_record(tmp_path) == {"exit_code": None, "reason": "timeout"}


def test_exit_record_missing_or_bad(tmp_path: Path) -> None:
    assert read_exit_record(tmp_path)["reason"] == "no exit record"
    (tmp_path / EXIT_FILE).write_text("not json")
    assert read_exit_record(tmp_path)["reason"] == "no exit record"
    (tmp_path / EXIT_FILE).write_text("[1, 2]")
    assert read_exit_record(tmp_path) == {"exit_code": None, "reason": "bad record"}
    (tmp_path / EXIT_FILE).write_text("[" * 100_000 + "]" * 100_000)
    assert read_exit_record(tmp_path)["reason"] == "no exit record"


# ------------------------------------------------------------------ release policy


def test_size_cap(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.bin": b"x" * 60, "b/c.bin": b"x" * 41})
    with pytest.raises(OutputPolicyViolation, match="101 bytes"):
        apply_output_policy(tmp_path, ReleaseRules(100, aggregate_only=False))
    apply_output_policy(tmp_path, ReleaseRules(101, aggregate_only=False))


def test_not_aggregate_only_releases_anything(tmp_path: Path) -> None:
    make_tree(tmp_path, {"records.csv": b"alice,42\n"})
    apply_output_policy(tmp_path, ANY)
    assert (tmp_path / "records.csv").read_bytes() == b"alice,42\n"


def test_aggregate_accepts_nested_numbers(tmp_path: Path) -> None:
    value = {
        "count": 12,
        "mean": 3.5,
        "flag": True,
        "missing": None,
        "hist": [1, 2, 3.25],
        "by_group": {"a-1": {"n": 1, "x.y": [0.5]}, "b_2": {"n": 2}},
    }
    write_json(tmp_path, "stats.json", value)
    write_json(tmp_path / "sub", "more.json", [1, 2, 3])
    apply_output_policy(tmp_path, AGG)
    assert json.loads((tmp_path / "stats.json").read_text()) == value


def test_aggregate_refuses_deep_or_huge_json_without_crashing(tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(OutputPolicyViolation, match="nested"):
        apply_output_policy(tmp_path, AGG)
    (tmp_path / "deep.json").write_text("1" * 5000)  # over Python's int digit limit
    with pytest.raises(OutputPolicyViolation, match="not valid JSON"):
        apply_output_policy(tmp_path, AGG)


def test_aggregate_ignores_exit_record(tmp_path: Path) -> None:
    # The runner writes the exit record (with its text reason) before applying the
    # policy; it must neither be refused as "text" nor get noise on its exit code.
    write_json(tmp_path, "stats.json", {"n": 1})
    write_exit_record(tmp_path, 0, "exited")
    apply_output_policy(tmp_path, ReleaseRules(1 << 20, True, dp_epsilon=0.5))
    assert read_exit_record(tmp_path) == {"exit_code": 0, "reason": "exited"}
    nested = tmp_path / "sub"
    write_exit_record(make_tree(nested, {}), 0, "smuggled")  # only the top-level one
    with pytest.raises(OutputPolicyViolation, match="text values"):
        apply_output_policy(tmp_path, AGG)


@pytest.mark.parametrize(
    ("name", "data", "match"),
    [
        ("records.csv", b"1,2\n", r"only \.json"),
        ("stats", b"{}", r"only \.json"),
        ("stats.json", b"{not json", "not valid JSON"),
        ("stats.json", b"\xff\xfe", "not valid JSON"),
        ("stats.json", b'{"name": "alice"}', "text values"),
        ("stats.json", b'["alice"]', "text values"),
        ("stats.json", b'"alice"', "text values"),
        ("stats.json", json.dumps(list(range(MAX_AGGREGATE_ARRAY + 1))).encode(), "array of"),
        ("stats.json", b"[[1, 2], [3]]", "numbers only"),
        ("stats.json", b'[{"a": 1}]', "numbers only"),
        ("stats.json", b'{"bad key": 1}', "not a short name"),
        ("stats.json", b'{"": 1}', "not a short name"),
        ("stats.json", json.dumps({"k" * 65: 1}).encode(), "not a short name"),
        ("stats.json", b'{"k\\n": 1}', "not a short name"),
        ("stats.json", b'{"x": NaN}', "not a finite"),
        ("stats.json", b'{"x": Infinity}', "not a finite"),
        ("stats.json", b"[-Infinity]", "not a finite"),
        ("stats.json", b"1e400", "not a finite"),
        ("stats.json", b"[" + b"9" * 400 + b"]", "not a finite"),
        ("stats.json", b"9" * 5000, "not valid JSON"),
    ],
)
def test_aggregate_refusals(tmp_path: Path, name: str, data: bytes, match: str) -> None:
    make_tree(tmp_path, {"ok.json": b"{}", name: data})
    with pytest.raises(OutputPolicyViolation, match=match):
        apply_output_policy(tmp_path, AGG)


def test_aggregate_too_many_numbers(tmp_path: Path) -> None:
    per = MAX_AGGREGATE_ARRAY
    groups = MAX_AGGREGATE_NUMBERS // per
    value = {f"g{i}": [1] * per for i in range(groups)}
    write_json(tmp_path, "stats.json", value)
    apply_output_policy(tmp_path, AGG)  # exactly at the limit
    value["one_more"] = [1]
    write_json(tmp_path, "stats.json", value)
    with pytest.raises(OutputPolicyViolation, match="numbers; aggregates"):
        apply_output_policy(tmp_path, AGG)


def test_aggregate_depth(tmp_path: Path) -> None:
    def nest(levels: int) -> object:
        value: object = 1
        for _ in range(levels):
            value = {"k": value}
        return value

    write_json(tmp_path, "stats.json", nest(8))
    apply_output_policy(tmp_path, AGG)
    write_json(tmp_path, "stats.json", nest(9))
    with pytest.raises(OutputPolicyViolation, match="deeper than 8"):
        apply_output_policy(tmp_path, AGG)


def test_dp_noise_changes_numbers_not_booleans(tmp_path: Path) -> None:
    value = {"n": 100, "mean": 2.5, "ok": True, "no": False, "none": None, "h": [1, 2, 3]}
    path = write_json(tmp_path, "stats.json", value)
    apply_output_policy(tmp_path, ReleaseRules(1 << 20, True, dp_epsilon=1.0))
    noisy = json.loads(path.read_text())
    assert noisy["ok"] is True and noisy["no"] is False and noisy["none"] is None
    assert noisy["n"] != 100 and noisy["mean"] != 2.5
    assert len(noisy["h"]) == 3 and noisy["h"] != [1, 2, 3]
    assert all(isinstance(v, float) for v in [noisy["n"], noisy["mean"], *noisy["h"]])


def test_dp_noise_only_with_aggregate_only(tmp_path: Path) -> None:
    path = write_json(tmp_path, "stats.json", {"n": 100})
    apply_output_policy(tmp_path, ReleaseRules(1 << 20, False, dp_epsilon=1.0))
    assert json.loads(path.read_text()) == {"n": 100}


def test_laplace_statistics() -> None:
    # Laplace(0, b): mean 0, E|X| = b, sd = b*sqrt(2). With 20,000 draws the standard error
    # of the mean is b*sqrt(2)/141 ~ 0.01 b and of mean |X| is b/141 ~ 0.007 b, so a 10%
    # tolerance is 10+ standard errors: this cannot flake in practice.
    scale, draws = 2.0, 20_000
    noise = [outputs._laplace(scale) for _ in range(draws)]
    assert all(math.isfinite(x) for x in noise)
    assert abs(sum(noise) / draws) < 0.1 * scale
    assert abs(sum(abs(x) for x in noise) / draws - scale) < 0.1 * scale
    assert sum(x > 0 for x in noise) / draws == pytest.approx(0.5, abs=0.05)


# ------------------------------------------------------------------ withhold / links


def test_withhold_empties_the_directory(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.json": b"{}", "sub/deeper/x.bin": b"secret", "sub/y": b""})
    (tmp_path / "emptydir").mkdir()
    write_exit_record(tmp_path, 0, "exited")
    withhold(tmp_path, "too big")
    assert [p.name for p in tmp_path.iterdir()] == [EXIT_FILE]
    assert read_exit_record(tmp_path) == {"exit_code": None, "reason": "withheld: too big"}


def test_withhold_removes_links_not_their_targets(tmp_path: Path) -> None:
    outside = make_tree(tmp_path / "outside", {"keep.txt": b"keep"})
    out = make_tree(tmp_path / "out", {"a": b""})
    (out / "dirlink").symlink_to(outside, target_is_directory=True)
    (out / "filelink").symlink_to(outside / "keep.txt")
    withhold(out, "links")
    assert [p.name for p in out.iterdir()] == [EXIT_FILE]
    assert (outside / "keep.txt").read_bytes() == b"keep"


@pytest.mark.parametrize("rules", [AGG, ANY])
def test_symlink_in_output_is_refused(tmp_path: Path, rules: ReleaseRules) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text("{}")
    out = make_tree(tmp_path / "out", {"ok.json": b"{}"})
    (out / "link.json").symlink_to(secret)
    with pytest.raises(UnsafeBundleError):
        apply_output_policy(out, rules)
    with pytest.raises(UnsafeBundleError):
        output_hash(out)
