"""An SQLite index of event logs, so ``eth_getLogs`` never scans receipts block by block."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

import orjson

_SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    block_number INTEGER NOT NULL,
    log_index INTEGER NOT NULL,
    address BLOB NOT NULL,
    topic0 BLOB, topic1 BLOB, topic2 BLOB, topic3 BLOB,
    body TEXT NOT NULL,
    PRIMARY KEY (block_number, log_index)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS logs_by_address ON logs (address, block_number);
CREATE INDEX IF NOT EXISTS logs_by_topic0 ON logs (topic0, block_number);
"""

MAX_RESULTS = 10_000  # like Infura/Alchemy caps: a huge answer is refused, not truncated


@dataclass(frozen=True)
class LogFilter:
    """A decoded ``eth_getLogs`` filter; each topic position is None (any) or alternatives."""

    from_block: int
    to_block: int
    addresses: tuple[bytes, ...] = ()
    topics: tuple[tuple[bytes, ...] | None, ...] = field(default_factory=tuple)


class TooManyLogsError(ValueError):
    pass


class LogIndex:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.executescript(_SCHEMA)

    def insert(self, conn: sqlite3.Connection, logs: list[dict[str, Any]]) -> None:
        conn.executemany(
            "INSERT INTO logs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [_row(entry) for entry in logs],
        )

    def query(self, flt: LogFilter) -> list[dict[str, Any]]:
        where = ["block_number BETWEEN ? AND ?"]
        args: list[Any] = [flt.from_block, flt.to_block]
        if flt.addresses:
            where.append(f"address IN ({','.join('?' * len(flt.addresses))})")
            args.extend(flt.addresses)
        for position, alternatives in enumerate(flt.topics[:4]):
            if alternatives:
                where.append(f"topic{position} IN ({','.join('?' * len(alternatives))})")
                args.extend(alternatives)
        sql = (
            f"SELECT body FROM logs WHERE {' AND '.join(where)} "
            f"ORDER BY block_number, log_index LIMIT {MAX_RESULTS + 1}"
        )
        rows = self._conn.execute(sql, args).fetchall()
        if len(rows) > MAX_RESULTS:
            raise TooManyLogsError(
                f"query returned more than {MAX_RESULTS} results; narrow the block range"
            )
        return [orjson.loads(r[0]) for r in rows]


def _row(entry: dict[str, Any]) -> tuple[Any, ...]:
    topics = [bytes.fromhex(t[2:]) for t in entry["topics"]] + [None] * 4
    return (
        int(entry["blockNumber"], 16),
        int(entry["logIndex"], 16),
        bytes.fromhex(entry["address"][2:].lower()),
        *topics[:4],
        orjson.dumps(entry).decode(),
    )
