"""The catalog's index and its verified metadata, on SQLite and PostgreSQL."""

from __future__ import annotations

from hashlib import sha256
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, text, update

from ailedger.db import open_database
from ailedger.db.migrate import downgrade, upgrade
from ailedger.sharing.catalog import (
    Catalog,
    MarketEvent,
    canonical_metadata,
    datasets,
    requests_table,
)

OWNER = "0x" + "11" * 20
REQUESTER = "0x" + "22" * 20
METADATA = {"title": "Rare disease cohort", "tags": ["rare-disease", "cohort"]}


def _registered(n: int, document: Any = METADATA, *, price: int = 10**18) -> MarketEvent:
    args = {
        "dataset_id": bytes([n]) * 32,
        "owner": OWNER,
        "ciphertext_hash": b"\xcc" * 32,
        "metadata_hash": sha256(canonical_metadata(document)).digest(),
        "purposes": 1 | 2,
        "needs_approval": True,
        "price": price,
        "duration": 86_400,
        "max_reads": 3,
    }
    return ("DatasetRegistered", args, 10 + n)


def _id(n: int) -> str:
    return "0x" + (bytes([n]) * 32).hex()


def test_events_build_the_index(database: Engine) -> None:
    catalog = Catalog(database)
    assert catalog.indexed_block() is None
    big_price = 2**200  # uint256 prices do not fit any integer column
    policy = {
        "dataset_id": bytes([2]) * 32,
        "purposes": 4,
        "needs_approval": False,
        "price": 5,
        "duration": 60,
        "max_reads": 0,
    }
    request = {
        "request_id": 7,
        "dataset_id": bytes([1]) * 32,
        "requester": REQUESTER,
        "owner": OWNER,
        "purpose": 1,
        "needs_approval": True,
    }
    catalog.record_events(
        [
            _registered(1, price=big_price),
            _registered(2),
            ("PolicyUpdated", policy, 13),
            ("RequestCreated", request, 14),
            ("DatasetRetired", {"dataset_id": bytes([1]) * 32}, 15),
        ],
        head=20,
    )
    assert catalog.indexed_block() == 20
    first = catalog.get(_id(1).upper().replace("0X", "0x"))
    assert first is not None and first.price == big_price and first.retired
    assert [e.dataset_id for e in catalog.search()] == [_id(2)]
    assert [e.dataset_id for e in catalog.search(include_retired=True)] == [_id(1), _id(2)]
    second = catalog.get(_id(2))
    assert second is not None
    assert (second.purposes, second.needs_approval, second.price) == (4, False, 5)
    assert catalog.search(purpose=1) == []
    assert catalog.requests(owner=OWNER) == [
        {
            "request_id": 7,
            "dataset_id": _id(1),
            "requester": REQUESTER,
            "owner": OWNER,
            "purpose": 1,
            "status": "pending",
        }
    ]
    catalog.record_events([("AccessGranted", {"request_id": 7}, 21)], head=22)
    assert [r["status"] for r in catalog.requests(requester=REQUESTER.upper())] == ["granted"]
    assert catalog.requests(requester=OWNER) == []


def test_metadata_is_kept_only_if_it_hashes_to_the_chain(database: Engine) -> None:
    catalog = Catalog(database)
    catalog.record_events([_registered(1)], head=11)
    assert catalog.search()[0].title == "(metadata unavailable)"
    assert not catalog.keep_metadata(_id(1), {**METADATA, "title": "Something else"})
    assert not catalog.keep_metadata(_id(9), METADATA)  # no such dataset
    assert catalog.search()[0].title == "(metadata unavailable)"
    assert catalog.keep_metadata(_id(1), METADATA)
    [entry] = catalog.search(text="rare disease", tag="COHORT")
    assert entry.title == "Rare disease cohort" and entry.tags == ["rare-disease", "cohort"]


def test_verified_metadata_is_shown_later_without_the_owner(database: Engine) -> None:
    Catalog(database).record_events([_registered(1)], head=11)
    Catalog(database).keep_metadata(_id(1), METADATA)
    # A new process, a new connection, and no owner's node anywhere: still there.
    reopened = open_database(database.url.render_as_string(hide_password=False))
    try:
        entry = Catalog(reopened).get(_id(1))
        assert entry is not None and entry.metadata == METADATA
    finally:
        reopened.dispose()


def test_metadata_altered_in_the_database_is_not_shown(database: Engine) -> None:
    catalog = Catalog(database)
    catalog.record_events([_registered(1)], head=11)
    assert catalog.keep_metadata(_id(1), METADATA)
    forged = canonical_metadata({**METADATA, "title": "Free data, no approval needed"})
    with database.begin() as conn:
        conn.execute(update(datasets).values(metadata_json=forged.decode()))
    entry = catalog.get(_id(1))
    assert entry is not None and entry.metadata is None
    assert entry.title == "(metadata unavailable)"


def test_a_re_registration_event_replayed_keeps_one_row(database: Engine) -> None:
    catalog = Catalog(database)
    catalog.record_events([_registered(1)], head=11)
    catalog.record_events([_registered(1)], head=11)  # a crash before the head was saved
    assert len(catalog.search()) == 1


UINT256_MAX = 2**256 - 1
EDGES = [0, 1, 2**63 - 1, 2**63, 2**64, 2**70, 2**255, UINT256_MAX]
uint256s = st.one_of(st.sampled_from(EDGES), st.integers(0, UINT256_MAX))
not_uint256s = st.one_of(
    st.integers(max_value=-1),
    st.integers(min_value=UINT256_MAX + 1),
    st.booleans(),
    st.none(),
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=8),
)
POLICY_FIELDS = ("purposes", "price", "duration", "max_reads")


def test_a_read_limit_past_bigint_is_kept_exactly(database: Engine) -> None:
    catalog = Catalog(database)
    event = _registered(1)
    event[1].update(max_reads=2**70, price=UINT256_MAX, duration=2**64, purposes=2**255)
    catalog.record_events([event], head=11)
    entry = catalog.get(_id(1))
    assert entry is not None
    assert (entry.max_reads, entry.price, entry.duration, entry.purposes) == (
        2**70,
        UINT256_MAX,
        2**64,
        2**255,
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    dataset=st.binary(min_size=32, max_size=32),
    policy=st.fixed_dictionaries({name: uint256s for name in POLICY_FIELDS}),
    request_id=uint256s,
    purpose=uint256s,
    hostile_field=st.sampled_from(
        [*POLICY_FIELDS, "dataset_id", "owner", "needs_approval", "metadata_hash"]
    ),
    hostile_value=not_uint256s,
)
def test_sync_keeps_every_uint256_and_skips_hostile_records(
    database: Engine,
    caplog: pytest.LogCaptureFixture,
    dataset: bytes,
    policy: dict[str, int],
    request_id: int,
    purpose: int,
    hostile_field: str,
    hostile_value: Any,
) -> None:
    assume(not (hostile_field == "needs_approval" and isinstance(hostile_value, bool)))
    catalog = Catalog(database)
    caplog.clear()
    good = _registered(1)
    good[1].update(dataset_id=dataset, **policy)
    hostile = _registered(2)
    other = bytes([dataset[0] ^ 1]) + dataset[1:]
    hostile[1].update(dataset_id=other)
    hostile[1][hostile_field] = hostile_value
    request = {
        "request_id": request_id,
        "dataset_id": dataset,
        "requester": REQUESTER,
        "owner": OWNER,
        "purpose": purpose,
        "needs_approval": False,
    }
    head = (catalog.indexed_block() or 0) + 1
    skipped = catalog.record_events([hostile, good, ("RequestCreated", request, 13)], head=head)
    assert skipped == 1 and "skipped DatasetRegistered" in caplog.text
    assert catalog.indexed_block() == head  # sync moved past the hostile record
    entry = catalog.get("0x" + dataset.hex())
    assert entry is not None
    assert {name: getattr(entry, name) for name in POLICY_FIELDS} == policy
    assert catalog.get("0x" + other.hex()) is None
    [kept] = [r for r in catalog.requests() if r["request_id"] == request_id]
    assert kept["purpose"] == purpose
    with database.begin() as conn:  # the next example starts from an empty index
        conn.execute(delete(datasets))
        conn.execute(delete(requests_table))


def test_the_migration_keeps_the_rows_it_widens(database: Engine) -> None:
    downgrade(database, "0001")
    with database.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sharing_catalog_datasets VALUES (:id, :owner, :h, :h, 3, :yes, "
                "'1000000000000000000', 86400, 9, :no, 10, NULL)"
            ),
            {"id": _id(1), "owner": OWNER, "h": "cc" * 32, "yes": True, "no": False},
        )
        for request_id in (10, 9):
            conn.execute(
                text(
                    "INSERT INTO sharing_catalog_requests "
                    "VALUES (:r, :id, :req, :owner, 1, 'pending', 11)"
                ),
                {"r": request_id, "id": _id(1), "req": REQUESTER, "owner": OWNER},
            )
    upgrade(database)
    entry = Catalog(database).get(_id(1))
    assert entry is not None
    assert (entry.purposes, entry.price, entry.duration, entry.max_reads) == (
        3,
        10**18,
        86_400,
        9,
    )
    assert [r["request_id"] for r in Catalog(database).requests()] == [9, 10]
