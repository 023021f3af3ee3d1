"""The catalog's index and its verified metadata, on SQLite and PostgreSQL."""

from __future__ import annotations

from hashlib import sha256
from typing import Any

from sqlalchemy import Engine, update

from ailedger.db import open_database
from ailedger.sharing.catalog import Catalog, MarketEvent, canonical_metadata, datasets

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
