"""The [output] schema of job.toml: strict names, bounded size, every statistic tied to a
declared count (so a release's keys never come from the job at run time)."""

from __future__ import annotations

import pytest

from ailedger.compute.jobs import JobSpecError, parse_job
from ailedger.compute.output_schema import MAX_RELEASE_VALUES, OutputSchema

BASE = """
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
"""


def schema_of(output: str) -> OutputSchema | None:
    return parse_job(BASE + output).output


def test_no_output_table_declares_nothing() -> None:
    assert schema_of("") is None


def test_inline_and_sub_table_forms_agree() -> None:
    inline = schema_of(
        '[output]\ncounts = ["s.json:n", "s.json:by_gene.KMT2D"]\n'
        'statistics = { "s.json:mean" = "s.json:n" }\n'
    )
    table = schema_of(
        '[output]\ncounts = ["s.json:n", "s.json:by_gene.KMT2D"]\n'
        '[output.statistics]\n"s.json:mean" = "s.json:n"\n'
    )
    assert (
        inline
        == table
        == OutputSchema(
            frozenset({"s.json:n", "s.json:by_gene.KMT2D"}), (("s.json:mean", "s.json:n"),)
        )
    )
    assert inline is not None and inline.files == {"s.json"}
    assert inline.places == {"s.json:n", "s.json:by_gene.KMT2D", "s.json:mean"}
    assert inline.cell_of("s.json:mean") == "s.json:n"


@pytest.mark.parametrize(
    ("output", "match"),
    [
        ('[output]\ncount = ["s.json:n"]\n', "unknown field 'count'"),
        ("[output]\ncounts = []\n", "at least one cell count"),
        ('[output]\ncounts = "s.json:n"\n', "must be a list"),
        ("[output]\ncounts = [1]\n", "must be a string"),
        ('[output]\ncounts = ["s.json:n"]\nstatistics = ["s.json:m"]\n', "table of quoted"),
        # Names: top-level .json files, short identifiers; never free text.
        ('[output]\ncounts = ["../s.json:n"]\n', "top-level file"),
        ('[output]\ncounts = ["sub/s.json:n"]\n', "top-level file"),
        ('[output]\ncounts = ["s.csv:n"]\n', "top-level file"),
        ('[output]\ncounts = ["s.json"]\n', "top-level file"),
        ('[output]\ncounts = ["s.json:"]\n', "1 to 8 keys"),
        ('[output]\ncounts = ["s.json:a..b"]\n', "1 to 8 keys"),
        ('[output]\ncounts = ["s.json:MRN-12345_Smith_1977-03-02_KMT2D"]\n', "1 to 8 keys"),
        ('[output]\ncounts = ["s.json:n n"]\n', "1 to 8 keys"),
        ('[output]\ncounts = ["s.json:' + "k" * 33 + '"]\n', "1 to 8 keys"),
        ('[output]\ncounts = ["s.json:' + ".".join("k" * 9) + '"]\n', "1 to 8 keys"),
        # Structure: each statistic tied to a declared count, places distinct and not nested.
        ('[output]\ncounts = ["s.json:n", "s.json:n"]\n', "twice"),
        ('[output]\ncounts = ["s.json:n"]\nstatistics = { "s.json:m" = "s.json:x" }\n', "cell"),
        ('[output]\ncounts = ["s.json:n"]\nstatistics = { "s.json:m" = 3 }\n', "cell"),
        ('[output]\ncounts = ["s.json:n"]\nstatistics = { "s.json:n" = "s.json:n" }\n', "too"),
        ('[output]\ncounts = ["s.json:a", "s.json:a.b"]\n', "lies inside"),
        ('[output]\ncounts = ["s.json:n"]\nstatistics = { s.m = "s.json:n" }\n', "top-level file"),
    ],
)
def test_refusals_name_the_output_table(output: str, match: str) -> None:
    with pytest.raises(JobSpecError, match=match) as caught:
        schema_of(output)
    assert str(caught.value).startswith("job.toml: [output]")


def test_schema_is_bounded_by_the_release_bound() -> None:
    names = [f'"s.json:c{i}"' for i in range(MAX_RELEASE_VALUES)]
    schema = schema_of(f"[output]\ncounts = [{', '.join(names)}]\n")
    assert schema is not None and len(schema.counts) == MAX_RELEASE_VALUES
    names.append('"s.json:one_more"')
    with pytest.raises(JobSpecError, match=f"at most {MAX_RELEASE_VALUES} values"):
        schema_of(f"[output]\ncounts = [{', '.join(names)}]\n")
