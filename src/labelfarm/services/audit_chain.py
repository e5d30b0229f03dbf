"""How audit rows are hashed, and the walk that checks a whole chain.

A row's hash covers its content and the previous row's hash. Rows are keyed: the hash is
an HMAC-SHA256 with the instance's audit key, which is kept outside the database, so
someone who can write to the database but does not hold the key cannot rewrite a row (or
the whole chain) and make the hashes fit again.

Rows written before the chain was keyed carry ``scheme`` 0 and a plain SHA-256 of the same
content. They are accepted only before the first keyed row, and only when a keyed row
follows them: the upgrade that introduced the key appended a keyed "seal" row on top of
them, so they cannot be rewritten either. A row with the plain digest after a keyed row, or
a chain of plain rows with no keyed row after them, is reported: that is what rewriting
the chain without the key looks like.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from labelfarm.db.tx import Sql

GENESIS = "0" * 64
UNKEYED = 0  # sha256 of the row's content (rows written before the chain was keyed)
KEYED = 1  # hmac-sha256 of the row's content with the audit key
MAX_REPORTED = 1000

# The walk reads rows as plain tuples, in this order (a hundred thousand and more a second).
ROWS_AFTER = Sql(
    "SELECT id, ts, workspace_id, actor_id, action, target, details, prev_hash, hash, scheme "
    "FROM audit_log WHERE id > :after ORDER BY id LIMIT :n"
)


def content(row: Mapping[str, Any]) -> bytes:
    """The bytes a row's hash covers (the same for both schemes)."""
    return orjson.dumps(
        [
            row["id"],
            repr(float(row["ts"])),
            row["workspace_id"],
            row["actor_id"],
            row["action"],
            row["target"],
            row["details"],
            row["prev_hash"],
        ]
    )


class Hmac:
    """HMAC-SHA256 (RFC 2104) with the key's pads hashed once: a row costs two small hash
    updates, about twice as fast as :func:`hmac.digest` (which starts afresh each time)."""

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def hexdigest(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


def keyed_digest(key: bytes, message: bytes) -> str:
    return hmac.digest(key, message, "sha256").hex()


@dataclass
class VerifyResult:
    ok: bool
    n_rows: int
    problems: list[dict[str, Any]] = field(default_factory=list)
    n_unkeyed: int = 0  # rows from before the chain was keyed, checked with plain SHA-256
    last_id: int = 0
    last_hash: str = GENESIS
    anchors: list[dict[str, Any]] = field(default_factory=list)  # each anchor checked
    seconds: float = 0.0  # how long the walk took


class Walk:
    """Checks rows fed in id order; :meth:`finish` compares the end with the head and with
    each anchored point (id → hash) given."""

    def __init__(self, key: bytes, anchored: Mapping[int, str] | None = None) -> None:
        self.key = key
        self.anchored = dict(anchored or {})
        self.seen_anchors: dict[int, str] = {}
        self.problems: list[dict[str, Any]] = []
        self.n_problems = 0
        self.prev_hash, self.expected_id, self.n = GENESIS, 1, 0
        self.n_unkeyed = 0
        self.keyed_seen = False

    def problem(self, row_id: int | None, text: str) -> None:
        self.n_problems += 1
        if len(self.problems) < MAX_REPORTED:
            self.problems.append({"id": row_id, "problem": text})

    def feed(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Check rows given as tuples in :data:`ROWS_AFTER`'s order (the walk's hot loop: one
        HMAC and one JSON encoding a row, no objects made)."""
        mac, dumps, anchored = Hmac(self.key).hexdigest, orjson.dumps, self.anchored
        prev, expected, n = self.prev_hash, self.expected_id, 0
        for row_id, ts, ws, actor, action, target, details, prev_hash, hash_, scheme in rows:
            n += 1
            if row_id != expected:
                self.problem(expected, f"rows {expected}..{row_id - 1} missing")
            if prev_hash != prev:
                self.problem(row_id, "chain broken before this row")
            message = dumps(
                [row_id, repr(float(ts)), ws, actor, action, target, details, prev_hash]
            )
            if scheme == KEYED:
                if mac(message) != hash_:
                    self.problem(row_id, "row content does not match its hash")
                self.keyed_seen = True
            elif scheme == UNKEYED:
                self.n_unkeyed += 1
                if self.keyed_seen:
                    self.problem(row_id, "row hashed without the key after the chain was keyed")
                elif hashlib.sha256(message).hexdigest() != hash_:
                    self.problem(row_id, "row content does not match its hash")
            else:
                self.problem(row_id, f"unknown hash scheme {scheme}")
            if row_id in anchored:
                self.seen_anchors[row_id] = hash_
            prev, expected = hash_, row_id + 1
        self.prev_hash, self.expected_id, self.n = prev, expected, self.n + n

    def finish(self, head: tuple[int, str] | None) -> VerifyResult:
        last_id = self.expected_id - 1
        if self.n_unkeyed and not self.keyed_seen:
            self.problem(
                last_id,
                "no keyed row follows the rows hashed without the key: the chain was "
                "rewritten without the key (or never sealed by the upgrade that keyed it)",
            )
        if head is not None and (head[0] != last_id or head[1] != self.prev_hash):
            self.problem(head[0], f"newest rows missing after id {last_id}")
        if head is None and self.n:
            self.problem(None, "audit head is missing")
        for anchored_id, anchored_hash in sorted(self.anchored.items()):
            found = self.seen_anchors.get(anchored_id)
            if found is None:
                self.problem(
                    anchored_id,
                    f"the anchored row {anchored_id} is gone: the chain ends at id {last_id} "
                    "(the newest rows were deleted)",
                )
            elif found != anchored_hash:
                self.problem(anchored_id, "the anchored row's hash differs from the anchor's")
        if self.n_problems > len(self.problems):
            more = self.n_problems - len(self.problems)
            self.problems.append({"id": None, "problem": f"... and {more} more problem(s)"})
        return VerifyResult(
            ok=self.n_problems == 0,
            n_rows=self.n,
            problems=self.problems,
            n_unkeyed=self.n_unkeyed,
            last_id=last_id,
            last_hash=self.prev_hash,
        )
