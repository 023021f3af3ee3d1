"""Output hashing, exit records and the compute-to-data release policy."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from ailedger.compute.jobs import UnsafeBundleError, bundle_hash, parse_job
from ailedger.compute.output_schema import MAX_RELEASE_VALUES, OutputSchema
from ailedger.compute.outputs import (
    EXIT_FILE,
    NOT_PRIVATE,
    OutputPolicyViolation,
    ReleaseRules,
    apply_output_policy,
    output_hash,
    read_exit_record,
    tree_size,
    withhold,
    write_exit_record,
)

AGG = ReleaseRules(max_output_bytes=1 << 20, aggregate_only=True, min_cell_size=10)
ANY = ReleaseRules(max_output_bytes=1 << 20, aggregate_only=False)
JOB_TOML = """
[job]
entry = "main.py"
runtime = "python"
[resources]
cpu_cores = 1
ram_mb = 64
max_hours = 1
[market]
max_price_per_hour = "1"
deadline_hours = 1
[output]
counts = ["stats.json:patients", "stats.json:by_gene.KMT2D", "stats.json:by_gene.NGLY1",
          "more.json:total"]
[output.statistics]
"stats.json:mean_age" = "stats.json:patients"
"stats.json:mean_age_kmt2d" = "stats.json:by_gene.KMT2D"
"""
SCHEMA = OutputSchema(
    frozenset(
        {
            "stats.json:patients",
            "stats.json:by_gene.KMT2D",
            "stats.json:by_gene.NGLY1",
            "more.json:total",
        }
    ),
    (
        ("stats.json:mean_age", "stats.json:patients"),
        ("stats.json:mean_age_kmt2d", "stats.json:by_gene.KMT2D"),
    ),
)
STATS = {"patients": 40, "mean_age": 51.25, "by_gene": {"KMT2D": 12, "NGLY1": 28}}


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
    with pytest.raises(OutputPolicyViolation, match="over the dataset's cap of 100 bytes") as e:
        apply_output_policy(tmp_path, ReleaseRules(100, aggregate_only=False))
    assert "101" not in str(e.value)  # the size is the job's number: never echoed
    apply_output_policy(tmp_path, ReleaseRules(101, aggregate_only=False))


def test_not_aggregate_only_releases_anything_and_claims_nothing(tmp_path: Path) -> None:
    make_tree(tmp_path, {"records.csv": b"alice,42\n", "stats.json": b'{"epsilon": 0.1}'})
    assert apply_output_policy(tmp_path, ANY, SCHEMA) == ()
    assert (tmp_path / "records.csv").read_bytes() == b"alice,42\n"
    assert (tmp_path / "stats.json").read_bytes() == b'{"epsilon": 0.1}'  # untouched


def test_declared_aggregates_are_released_canonically(tmp_path: Path) -> None:
    (tmp_path / "stats.json").write_text(json.dumps(STATS, indent=7))  # spacing: a channel
    write_json(tmp_path, "more.json", {"total": 40})
    write_exit_record(tmp_path, 0, "exited")
    assert apply_output_policy(tmp_path, AGG, SCHEMA) == ()
    assert (tmp_path / "stats.json").read_text() == json.dumps(STATS, sort_keys=True) + "\n"
    assert json.loads((tmp_path / "more.json").read_text()) == {"total": 40}
    assert read_exit_record(tmp_path) == {"exit_code": 0, "reason": "exited"}


def test_a_declared_place_may_be_missing(tmp_path: Path) -> None:
    write_json(tmp_path, "stats.json", {"patients": 40})  # no more.json, no by_gene
    assert apply_output_policy(tmp_path, AGG, SCHEMA) == ()
    assert json.loads((tmp_path / "stats.json").read_text()) == {"patients": 40}


def test_aggregate_only_needs_a_schema(tmp_path: Path) -> None:
    write_json(tmp_path, "stats.json", {"patients": 40})
    with pytest.raises(OutputPolicyViolation, match=r"declares no \[output\] schema"):
        apply_output_policy(tmp_path, AGG, None)


def test_small_cell_is_suppressed_with_its_statistics(tmp_path: Path) -> None:
    # Attack: a count of 3 with its mean tells a lot about 3 people.
    value = {**STATS, "by_gene": {"KMT2D": 3, "NGLY1": 25}, "mean_age_kmt2d": 41.5}
    path = write_json(tmp_path, "stats.json", value)
    suppressed = apply_output_policy(tmp_path, AGG, SCHEMA)
    assert suppressed == ("stats.json:by_gene.KMT2D", "stats.json:mean_age_kmt2d")
    released = json.loads(path.read_text())
    assert released["by_gene"] == {"KMT2D": None, "NGLY1": 25}
    assert released["mean_age_kmt2d"] is None
    assert released["mean_age"] == STATS["mean_age"] and released["patients"] == 40


def test_minimum_cell_size_is_the_datasets(tmp_path: Path) -> None:
    path = write_json(tmp_path, "stats.json", {"patients": 40, "mean_age": 50.5})
    assert apply_output_policy(tmp_path, ReleaseRules(1 << 20, True, 41), SCHEMA) == (
        "stats.json:mean_age",
        "stats.json:patients",
    )
    assert json.loads(path.read_text()) == {"patients": None, "mean_age": None}
    write_json(tmp_path, "stats.json", {"patients": 0})  # an empty cell is a small cell
    assert apply_output_policy(tmp_path, ReleaseRules(1 << 20, True, 1), SCHEMA) == (
        "stats.json:patients",
    )


def test_statistic_without_its_count_is_suppressed(tmp_path: Path) -> None:
    path = write_json(tmp_path, "stats.json", {"mean_age": 50.5, "by_gene": {"NGLY1": 12}})
    assert apply_output_policy(tmp_path, AGG, SCHEMA) == ("stats.json:mean_age",)
    assert json.loads(path.read_text()) == {"mean_age": None, "by_gene": {"NGLY1": 12}}


MRN = "MRN-12345_Smith_1977-03-02_KMT2D"


def test_free_text_key_is_withheld_and_never_echoed(tmp_path: Path) -> None:
    # Attack from the review: a key carrying a patient's identifiers came out intact.
    write_json(tmp_path, "stats.json", {"patients": 40, "by_gene": {MRN: 12}})
    with pytest.raises(OutputPolicyViolation, match="does not declare") as caught:
        apply_output_policy(tmp_path, AGG, SCHEMA)
    assert "MRN" not in str(caught.value) and "Smith" not in str(caught.value)
    withhold(tmp_path, str(caught.value))
    assert "Smith" not in (tmp_path / EXIT_FILE).read_text()


def test_undeclared_key_or_file_is_withheld(tmp_path: Path) -> None:
    write_json(tmp_path, "stats.json", {"patients": 40, "extra": 12})
    with pytest.raises(OutputPolicyViolation, match="does not declare"):
        apply_output_policy(tmp_path, AGG, SCHEMA)
    write_json(tmp_path, "stats.json", {"patients": 40})
    write_json(tmp_path, "Smith_1977.json", {"patients": 40})
    with pytest.raises(OutputPolicyViolation, match="a file its") as caught:
        apply_output_policy(tmp_path, AGG, SCHEMA)
    assert "Smith" not in str(caught.value)
    (tmp_path / "Smith_1977.json").unlink()
    (tmp_path / "Smith_1977").mkdir()  # an empty directory's name is text too
    with pytest.raises(OutputPolicyViolation, match="directory"):
        apply_output_policy(tmp_path, AGG, SCHEMA)


def test_birth_year_bits_as_booleans_are_withheld(tmp_path: Path) -> None:
    # Attack from the review: booleans passed un-noised, so the 11 bits of one patient's
    # birth year came out exact. A boolean is not an aggregate, declared or not.
    bits = {f"b{i}": bool(1977 >> i & 1) for i in range(11)}
    schema = OutputSchema(
        frozenset({"stats.json:patients"} | {f"stats.json:bits.b{i}" for i in range(11)}), ()
    )
    write_json(tmp_path, "stats.json", {"patients": 40, "bits": bits})
    with pytest.raises(OutputPolicyViolation, match="not aggregates"):
        apply_output_policy(tmp_path, AGG, schema)
    write_json(tmp_path, "stats.json", {"patients": 40, "bits": {"b0": None}})
    with pytest.raises(OutputPolicyViolation, match="not aggregates"):
        apply_output_policy(tmp_path, AGG, schema)


def test_the_value_bound_is_per_release_not_per_file(tmp_path: Path) -> None:
    # Attack from the review: 10,000 raw numbers across 20 files, each file under the old
    # per-file bound. The bound counts every value in all files, declared or not.
    files = [f"part{i}.json" for i in range(20)]
    schema = OutputSchema(frozenset(f"{f}:n" for f in files), ())
    for name in files:
        write_json(tmp_path, name, {f"v{j}": 1977 for j in range(500)})
    with pytest.raises(OutputPolicyViolation, match=f"more than {MAX_RELEASE_VALUES} values"):
        apply_output_policy(tmp_path, AGG, schema)
    # Booleans and nulls count too: 1,001 of them break the bound before their type does.
    for name in files:
        (tmp_path / name).unlink()
    write_json(tmp_path, "part0.json", {f"v{j}": None for j in range(MAX_RELEASE_VALUES + 1)})
    with pytest.raises(OutputPolicyViolation, match="more than"):
        apply_output_policy(tmp_path, AGG, schema)


def test_a_release_at_the_bound_passes(tmp_path: Path) -> None:
    names = [f"c{i}" for i in range(MAX_RELEASE_VALUES)]
    schema = OutputSchema(
        frozenset(f"a.json:{n}" for n in names[:500]) | {f"b.json:{n}" for n in names[500:]}, ()
    )
    write_json(tmp_path, "a.json", {n: 10 for n in names[:500]})
    write_json(tmp_path, "b.json", {n: 10 for n in names[500:]})
    assert apply_output_policy(tmp_path, AGG, schema) == ()


def test_a_job_that_writes_its_own_epsilon_is_not_private(tmp_path: Path) -> None:
    # The release may hold a number called epsilon; nothing about it says private.
    schema = OutputSchema(frozenset({"stats.json:n"}), (("stats.json:epsilon", "stats.json:n"),))
    path = write_json(tmp_path, "stats.json", {"n": 40, "epsilon": 0.1})
    write_exit_record(tmp_path, 0, "exited")
    apply_output_policy(tmp_path, AGG, schema)
    assert json.loads(path.read_text()) == {"n": 40, "epsilon": 0.1}  # exact, no noise
    assert "privat" not in (tmp_path / EXIT_FILE).read_text()
    assert {f.name for f in dataclasses.fields(ReleaseRules)} == {
        "max_output_bytes",
        "aggregate_only",
        "min_cell_size",
    }
    assert "not differentially private" in NOT_PRIVATE


def test_aggregate_refuses_deep_or_huge_json_without_crashing(tmp_path: Path) -> None:
    (tmp_path / "stats.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(OutputPolicyViolation, match="nested at most"):
        apply_output_policy(tmp_path, AGG, SCHEMA)
    (tmp_path / "stats.json").write_text('{"patients": ' + "1" * 5000 + "}")
    with pytest.raises(OutputPolicyViolation, match="not JSON"):
        apply_output_policy(tmp_path, AGG, SCHEMA)


def test_nested_exit_record_is_the_jobs(tmp_path: Path) -> None:
    # Only the top-level exit record is the provider's; one the job nests is refused.
    write_json(tmp_path, "stats.json", {"patients": 40})
    write_exit_record(tmp_path, 0, "exited")
    write_exit_record(make_tree(tmp_path / "sub", {}), 0, "smuggled")
    with pytest.raises(OutputPolicyViolation, match="directory"):
        apply_output_policy(tmp_path, AGG, SCHEMA)


@pytest.mark.parametrize(
    ("name", "data", "match"),
    [
        ("records.csv", b"1,2\n", "a file its"),
        ("stats", b"{}", "a file its"),
        ("stats.json", b"{not json", "not JSON"),
        ("stats.json", b"\xff\xfe", "not JSON"),
        ("stats.json", b"[1, 2]", "one JSON object"),
        ("stats.json", b"40", "one JSON object"),
        ("stats.json", b'{"patients": "alice"}', "whole number"),
        ("stats.json", b'{"patients": 40.0}', "whole number"),
        ("stats.json", b'{"patients": -1}', "whole number"),
        ("stats.json", b'{"patients": true}', "not aggregates"),
        ("stats.json", b'{"patients": [40]}', "whole number"),
        ("stats.json", b'{"patients": {}}', "whole number"),
        ("stats.json", b'{"patients": 40, "mean_age": "old"}', "finite number"),
        ("stats.json", b'{"patients": 40, "mean_age": [1, 2]}', "finite number"),
        ("stats.json", b'{"patients": 40, "mean_age": NaN}', "finite number"),
        ("stats.json", b'{"patients": 40, "mean_age": Infinity}', "finite number"),
        ("stats.json", b'{"patients": 40, "mean_age": 1e400}', "finite number"),
        ("stats.json", b'{"patients": 40, "mean_age": ' + b"9" * 400 + b"}", "finite number"),
        ("stats.json", b'{"patients": ' + b"9" * 400 + b"}", "whole number"),
        ("stats.json", b'{"by_gene": {"NGLY1": {"x": 1}}}', "does not declare"),
        ("stats.json", b'{"bad key": 1}', "does not declare"),
        # One key with a dot must not pass for the two nested keys of a declared place.
        ("stats.json", b'{"by_gene.KMT2D": 12}', "does not declare"),
        ("stats.json", b'{"by_gene": {"NGLY1": 12}, "by_gene.NGLY1": 3}', "does not declare"),
        ("stats.json", b'{"": 1}', "does not declare"),
    ],
)
def test_aggregate_refusals(tmp_path: Path, name: str, data: bytes, match: str) -> None:
    make_tree(tmp_path, {"more.json": b"{}", name: data})
    with pytest.raises(OutputPolicyViolation, match=match):
        apply_output_policy(tmp_path, AGG, SCHEMA)


def test_schema_from_job_toml_drives_the_release(tmp_path: Path) -> None:
    spec = parse_job(JOB_TOML)
    assert spec.output == SCHEMA
    write_json(tmp_path, "stats.json", STATS)
    assert apply_output_policy(tmp_path, AGG, spec.output) == ()


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
