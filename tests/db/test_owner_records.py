"""A data owner's records: datasets with wrapped keys, request nonces, the watched block."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine

from ailedger.db import DatabaseError
from ailedger.sharing.owner_store import NONCE_GRACE_SECONDS, OwnedDataset, OwnerStore

OWNER = "0x" + "aB" * 20
OTHER_OWNER = "0x" + "cd" * 20


def _dataset(n: int) -> OwnedDataset:
    return OwnedDataset(
        dataset_id=bytes([n]) * 32,
        blob_hash="ab" * 32,
        version=1,
        wrapped_key=b"\x00\xffwrapped" * 10,
        metadata={"title": f"set {n}", "tags": ["a"]},
    )


def test_datasets_round_trip(database: Engine) -> None:
    store = OwnerStore(database, OWNER)
    assert store.get(bytes(32)) is None and store.all() == []
    store.add(_dataset(1))
    store.add(_dataset(2))
    assert store.get(bytes([1]) * 32) == _dataset(1)
    assert [d.dataset_id for d in store.all()] == [bytes([1]) * 32, bytes([2]) * 32]
    with pytest.raises(DatabaseError, match="nothing of this operation was kept"):
        store.add(_dataset(1))  # a dataset id is random and never reused
    assert OwnerStore(database, OWNER).get(bytes([2]) * 32) == _dataset(2)


def test_a_nonce_is_accepted_once(database: Engine) -> None:
    store = OwnerStore(database, OWNER)
    now = int(time.time())
    assert store.use_nonce(b"\x01" * 32, now + 600)
    assert not store.use_nonce(b"\x01" * 32, now + 600)  # replay
    assert store.use_nonce(b"\x02" * 32, now + 600)


def test_expired_nonces_are_forgotten_after_the_grace_period(database: Engine) -> None:
    store = OwnerStore(database, OWNER)
    long_expired = int(time.time()) - NONCE_GRACE_SECONDS - 10
    assert store.use_nonce(b"\x01" * 32, long_expired)
    assert store.use_nonce(b"\x02" * 32, int(time.time()) + 600)  # this sweep drops the first
    assert store.use_nonce(b"\x01" * 32, long_expired)


def test_the_watched_block_moves(database: Engine) -> None:
    store = OwnerStore(database, OWNER)
    assert store.watched_block() == -1
    store.set_watched_block(5)
    store.set_watched_block(9)
    assert OwnerStore(database, OWNER).watched_block() == 9


def test_owners_sharing_a_database_keep_their_own_records(database: Engine) -> None:
    mine, theirs = OwnerStore(database, OWNER), OwnerStore(database, OTHER_OWNER)
    mine.add(_dataset(1))
    theirs.add(_dataset(2))
    assert theirs.get(bytes([1]) * 32) is None  # its key is wrapped to another owner
    assert [d.dataset_id for d in mine.all()] == [bytes([1]) * 32]
    assert OwnerStore(database, OWNER.upper().replace("0X", "0x")).get(bytes([1]) * 32)
    mine.set_watched_block(40)
    assert theirs.watched_block() == -1  # its node still logs its own decisions
