from __future__ import annotations

from pathlib import Path

import pytest

from ailedger.privacy.errors import QueryError
from ailedger.privacy.table import Column, parse_column, read_columns

AGE = Column("age", "int", lower=0, upper=120)
WEIGHT = Column("weight", "float", lower=2.5, upper=300.0)
SEX = Column("sex", "category", categories=("F", "M"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


def test_values_are_clamped_and_unknowns_never_pass(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sex,age,weight,name\nF,30,70.5,Ann\nM,-4,1000,Bob\nX,abc,nan,Cy\n,,inf,Di\nM,33.6,\n",
    )
    data = read_columns(path, [AGE, WEIGHT, SEX])
    assert data == {
        "age": [30, 0, 0, 0, 34],
        "weight": [70.5, 300.0, 2.5, 2.5, 2.5],
        "sex": ["F", "M", None, None, "M"],
    }
    assert "name" not in data


def test_missing_column_is_named(tmp_path: Path) -> None:
    with pytest.raises(QueryError, match="'weight'"):
        read_columns(write(tmp_path, "age\n3\n"), [AGE, WEIGHT])


def test_row_limit(tmp_path: Path) -> None:
    with pytest.raises(QueryError, match="more than 2 rows"):
        read_columns(write(tmp_path, "age\n1\n2\n3\n"), [AGE], max_rows=2)


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(QueryError, match="header"):
        read_columns(write(tmp_path, ""), [AGE])


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "int", "lower": 0},
        {"type": "int", "lower": 5, "upper": 1},
        {"type": "int", "lower": 0.5, "upper": 1},
        {"type": "float", "lower": float("nan"), "upper": 1},
        {"type": "float", "lower": 0, "upper": float("inf")},
        {"type": "float", "lower": False, "upper": 1},
        {"type": "float", "lower": "0", "upper": 1},
        {"type": "category", "categories": []},
        {"type": "category", "categories": ["a", "a"]},
        {"type": "category", "categories": ["a", ""]},
        {"type": "category", "categories": [str(i) for i in range(51)]},
        {"type": "category", "categories": "ab"},
        {"type": "date"},
        [],
    ],
)
def test_bad_declarations(raw: object) -> None:
    with pytest.raises(QueryError):
        parse_column("c", raw)
