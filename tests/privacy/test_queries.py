from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ailedger.privacy.accountant import spent_epsilon
from ailedger.privacy.errors import QueryError
from ailedger.privacy.queries import parse_query, plan_charges, run_query

QUERY: dict[str, Any] = {
    "columns": {
        "age": {"type": "int", "lower": 0, "upper": 120},
        "sex": {"type": "category", "categories": ["F", "M"]},
    },
    "statistics": [
        {"kind": "count"},
        {"kind": "sum", "column": "age"},
        {"kind": "mean", "column": "age"},
        {"kind": "histogram", "column": "sex"},
        {"kind": "quantile", "column": "age", "q": 0.5},
    ],
    "epsilon": 1.0,
}


@pytest.fixture
def people(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)
    ages = rng.integers(20, 61, 4000)  # uniform on 20..60, median 40
    sexes = np.where(np.arange(4000) % 4 == 0, "F", "M")  # 1000 F, 3000 M
    path = tmp_path / "people.csv"
    rows = zip(ages, sexes, strict=True)
    lines = ["age,sex,secret"] + [f"{a},{s},x{i}" for i, (a, s) in enumerate(rows)]
    path.write_text("\n".join([*lines, "50,Other,y"]) + "\n")
    return path


def query(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(QUERY)
    raw.update(changes)
    return raw


def test_plan_equals_the_charges_applied(people: Path) -> None:
    spec = parse_query(query(epsilon=2.0))
    planned = plan_charges(spec)
    result = run_query(spec, people)
    assert result.charges == planned
    # Five statistics at 0.4 each, the mean as two halves: exactly the budget, basic sum.
    assert sum(c.epsilon * c.count for c in planned) == pytest.approx(2.0)
    assert spent_epsilon([planned], 1e-6) <= 2.0 + 1e-3


def test_values_are_close_at_a_large_epsilon(people: Path) -> None:
    values = run_query(parse_query(query(epsilon=10.0)), people).values
    assert set(values) == {"count", "sum_age", "mean_age", "histogram_sex", "quantile_age_0.5"}
    assert abs(values["count"] - 4000) < 30
    assert abs(values["mean_age"] - 40) < 2
    assert set(values["histogram_sex"]) == {"F", "M"}  # "Other" is never released
    assert abs(values["histogram_sex"]["F"] - 1000) < 30
    assert abs(values["quantile_age_0.5"] - 40) <= 3
    assert isinstance(values["count"], int) and isinstance(values["mean_age"], float)


def test_group_by_releases_only_declared_groups_at_the_price_of_one(people: Path) -> None:
    grouped = parse_query(query(group_by="sex"))
    result = run_query(grouped, people)
    assert set(result.values) == {"F", "M"}
    assert result.charges == plan_charges(parse_query(query()))
    assert abs(result.values["F"]["count"] - 1000) < 100


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epsilon": math.nan}, "epsilon"),
        ({"epsilon": math.inf}, "epsilon"),
        ({"epsilon": -1.0}, "epsilon"),
        ({"epsilon": 0}, "epsilon"),
        ({"epsilon": 11.0}, "epsilon"),
        ({"epsilon": True}, "epsilon"),
        ({"epsilon": "1"}, "epsilon"),
        ({"statistics": [{"kind": "count"}] * 21}, "1 to 20"),
        ({"statistics": []}, "1 to 20"),
        ({"statistics": [{"kind": "count"}, {"kind": "count"}]}, "twice"),
        ({"statistics": [{"kind": "mean", "column": "height"}]}, "height"),
        ({"statistics": [{"kind": "mean", "column": "sex"}]}, "int or float"),
        ({"statistics": [{"kind": "histogram", "column": "age"}]}, "category"),
        ({"statistics": [{"kind": "median", "column": "age"}]}, "kind"),
        ({"statistics": [{"kind": "count", "column": "age"}]}, "exactly"),
        ({"statistics": [{"kind": "quantile", "column": "age", "q": 1.5}]}, "q"),
        ({"statistics": [{"kind": "quantile", "column": "age", "q": math.nan}]}, "q"),
        ({"statistics": [{"kind": "quantile", "column": "age", "q": False}]}, "q"),
        ({"statistics": [{"kind": "quantile", "column": "age"}]}, "exactly"),
        ({"group_by": "age"}, "group_by"),
        ({"group_by": "nation"}, "group_by"),
        ({"columns": {}}, "columns"),
        ({"columns": {"age": {"type": "int", "lower": 0, "upper": math.inf}}}, "bounds"),
        ({"limit": 5}, "unknown"),
    ],
)
def test_bad_queries_say_what_to_fix(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_query(query(**changes))


def test_a_query_is_an_object() -> None:
    with pytest.raises(QueryError, match="object"):
        parse_query([QUERY])


def test_undeclared_csv_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("age\n1\n")
    with pytest.raises(QueryError, match="'sex'"):
        run_query(parse_query(query()), path)
