"""Events audited in aggregate: counted in memory, written as one audit row per key and
time bucket.

Some events come in floods (failed sign-ins, refused requests, media views); one chained
audit row each would serialise a write per event and let a flood fill the log. A tally counts
them per (action, target, workspace, actor, bucket start) and :meth:`AuditTally.flush` writes
one row per key with ``{"count": n, "first": t, "last": t}`` once its bucket has closed, all of
them in one write transaction. Memory is bounded: once ``max_keys`` keys are held, further new
keys of an action are folded into one overflow key of that action (target ``"*"``), so a
flood of distinct targets grows neither the memory nor the log.

A tally lives in one server process (``AppContext.tally``), which flushes it every bucket and
at shutdown; events of a process that dies between flushes are lost (at most one bucket).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, NamedTuple

from labelfarm.db.engine import Database
from labelfarm.db.tx import CoreTx, transaction
from labelfarm.services import audit

OVERFLOW_TARGET = "*"


class _Key(NamedTuple):
    action: str
    target: str
    workspace_id: int | None
    actor_id: int | None
    bucket: float  # the bucket's start
    bucket_seconds: float


@dataclass(slots=True)
class _Count:
    n: int
    first: float
    last: float


class AuditTally:
    """Counts events in memory per (action, target, workspace_id, actor_id, bucket start);
    flush() appends one audit row per key: details {"count": n, "first": t, "last": t, **extra}.
    """

    def __init__(self, bucket_seconds: float = 60.0, max_keys: int = 10_000) -> None:
        if bucket_seconds <= 0:
            raise ValueError("bucket_seconds must be positive")
        self.bucket_seconds = bucket_seconds
        self.max_keys = max_keys
        self._counts: dict[_Key, _Count] = {}
        # add() is called from the event loop and from worker threads alike
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._counts)

    def add(
        self,
        action: str,
        target: str,
        *,
        now: float,
        workspace_id: int | None = None,
        actor_id: int | None = None,
        bucket_seconds: float | None = None,
    ) -> None:
        """Count one event (``bucket_seconds``: this event's bucket, e.g. a day for media views)."""
        span = bucket_seconds or self.bucket_seconds
        start = math.floor(now / span) * span
        key = _Key(action, target, workspace_id, actor_id, start, span)
        with self._lock:
            count = self._counts.get(key)
            if count is None and len(self._counts) >= self.max_keys:
                key = _Key(action, OVERFLOW_TARGET, None, None, start, span)
                count = self._counts.get(key)
            if count is None:
                self._counts[key] = _Count(1, now, now)
            else:
                count.n += 1
                count.first = min(count.first, now)
                count.last = max(count.last, now)

    def _take(self, now: float, everything: bool) -> list[tuple[_Key, _Count]]:
        with self._lock:
            done = [
                (key, count)
                for key, count in self._counts.items()
                if everything or key.bucket + key.bucket_seconds <= now
            ]
            for key, _ in done:
                del self._counts[key]
        return done

    def _put_back(self, rows: list[tuple[_Key, _Count]]) -> None:
        with self._lock:
            for key, count in rows:
                held = self._counts.get(key)
                if held is None:
                    self._counts[key] = count
                else:
                    held.n += count.n
                    held.first = min(held.first, count.first)
                    held.last = max(held.last, count.last)

    def flush(self, db: Database, now: float, *, everything: bool = False) -> int:
        """Write the rows of closed buckets (all buckets with everything=True) in ONE write
        transaction via labelfarm.services.audit.record; returns the number of rows written."""
        rows = self._take(now, everything)
        if not rows:
            return 0
        try:
            db.run(_write_rows, rows, now)
        except BaseException:
            self._put_back(rows)  # counted again at the next flush
            raise
        return len(rows)


@transaction("write")
def _write_rows(tx: CoreTx, rows: list[tuple[_Key, _Count]], now: float) -> None:
    for key, count in sorted(rows, key=lambda r: (r[0].bucket, r[0].action, r[0].target)):
        details: dict[str, Any] = {"count": count.n, "first": count.first, "last": count.last}
        if key.target == OVERFLOW_TARGET:
            details["overflow"] = True
        details["bucket_seconds"] = key.bucket_seconds
        audit.record(
            tx,
            action=key.action,
            target=key.target,
            now=now,
            workspace_id=key.workspace_id,
            actor_id=key.actor_id,
            details=details,
        )
