"""PostgreSQL connections for the hot path: raw psycopg, autocommit, kept open.

Two kinds, by what a commit waits for:

* **lease** connections run ``lease`` and ``lookup`` transactions (``next``, ``skip``,
  checkout, token and role lookups). Their single statements are soft state: a crash may
  forget the last moment of them and the items simply go back to the queue, so their
  commits do not wait for the WAL flush (``synchronous_commit = off``); transactions that
  must be durable switch it back on (``Tx.transaction``).
* **durable** connections run ``submit`` transactions: every commit waits for the flush,
  so a submission written in one statement needs no transaction around it.

Both use generic plans: psycopg prepares a statement from its fifth use on a connection,
and PostgreSQL would still plan the big ``next`` statement anew for every call (its custom
plans look cheaper than the generic one), which costs more than running it. The hot
statements are written to have good generic plans (index range scans whatever the
parameters).

:class:`SyncPool` serves threads and tests; :class:`BridgedPool` serves one event loop,
for code run through :func:`labelfarm.db.bridge.spawn`.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

GENERIC_PLANS = "SET plan_cache_mode = force_generic_plan"
SESSION = {
    False: f"SET synchronous_commit = off; {GENERIC_PLANS}",
    True: GENERIC_PLANS,
}


class SyncPool:
    """Blocking connections for threads: at most ``size`` in use at once (more callers
    wait), idle ones reused with no ping on checkout (a dead connection fails its call
    once and is dropped with the idle ones; ``Database.run`` runs the call again on a
    fresh one)."""

    def __init__(self, conninfo: str, durable: bool, size: int) -> None:
        self.conninfo = conninfo
        self.durable = durable
        self.idle: list[Any] = []
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(size)

    def take(self) -> Any:
        self.slots.acquire()
        with self.lock:
            if self.idle:
                return self.idle.pop()
        try:
            import psycopg

            conn = psycopg.connect(self.conninfo, autocommit=True)
            conn.execute(SESSION[self.durable])
        except BaseException:
            self.slots.release()
            raise
        return conn

    def give(self, conn: Any) -> None:
        if conn.closed or conn.broken:
            conn.close()
            self.close()  # likely a database restart: the idle ones are gone too
        else:
            with self.lock:
                self.idle.append(conn)
        self.slots.release()

    def close(self) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()


class BridgedPool:
    """Asynchronous connections of one event loop: at most ``size`` in use at once
    (requests beyond wait their turn without blocking the loop), opened on demand, kept."""

    def __init__(self, conninfo: str, durable: bool, size: int) -> None:
        self.conninfo = conninfo
        self.durable = durable
        self.loop = asyncio.get_running_loop()
        self.idle: list[Any] = []
        self.slots = asyncio.Semaphore(size)

    async def take(self) -> Any:
        await self.slots.acquire()
        if self.idle:
            return self.idle.pop()
        try:
            import psycopg

            conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
            await conn.execute(SESSION[self.durable])
        except BaseException:
            self.slots.release()
            raise
        return conn

    def give(self, conn: Any, reuse: bool) -> None:
        if reuse and not (conn.closed or conn.broken):
            self.idle.append(conn)
        else:
            conn.pgconn.finish()
            if conn.broken:
                self.close()  # likely a database restart: the idle ones are gone too
        self.slots.release()

    def close(self) -> None:
        idle, self.idle = self.idle, []
        for conn in idle:
            conn.pgconn.finish()
