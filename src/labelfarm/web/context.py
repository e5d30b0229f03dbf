"""Everything a request needs, built once per app: settings, database, media, caches, clock."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from labelfarm.db.engine import Database
from labelfarm.services.audit_tally import AuditTally
from labelfarm.services.media import MediaStore
from labelfarm.services.passwords import is_hashing
from labelfarm.services.projects import Project
from labelfarm.services.tasks import prefill
from labelfarm.services.tasks.handles import TaskHandles
from labelfarm.services.users import Principal
from labelfarm.settings import Settings
from labelfarm.web.login_limits import HashGate, LoginLimiter, Network, parse_networks

K = TypeVar("K")
V = TypeVar("V")
P = ParamSpec("P")


class TTLCache(Generic[K, V]):
    """A small per-process cache whose entries live about ``ttl`` seconds (of the given clock).

    Used on the hot path for token, role and project lookups; changes made through this
    process invalidate their entries at once, other processes see them within ``ttl``.
    Lifetimes vary by ±10 %, so entries filled together (a shift starting) do not all expire
    together; :meth:`fetch` makes concurrent misses of one key share one lookup.
    """

    def __init__(self, ttl: float, clock: Callable[[], float], max_size: int = 100_000) -> None:
        self.ttl = ttl
        self.clock = clock
        self.max_size = max_size
        self._data: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}

    def get(self, key: K) -> tuple[bool, V | None]:
        hit = self._data.get(key)
        if hit is None or hit[0] < self.clock():
            return False, None
        return True, hit[1]

    def put(self, key: K, value: V) -> None:
        if len(self._data) >= self.max_size:
            self._data.clear()
        self._data[key] = (self.clock() + self.ttl * (0.9 + 0.2 * random.random()), value)

    async def fetch(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value, or ``await load()`` stored; one load per key at a time."""
        hit = self._data.get(key)
        if hit is not None and hit[0] >= self.clock():
            return hit[1]
        pending = self._loading.get(key)
        if pending is not None:
            await asyncio.wait((pending,))
            if not pending.cancelled():
                return pending.result()
            return await load()  # the first caller's lookup failed: look up for ourselves
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except BaseException:
            future.cancel()
            raise
        finally:
            del self._loading[key]
        self.put(key, value)
        future.set_result(value)
        return value

    def drop(self, key: K) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()


@dataclass
class AppContext:
    settings: Settings
    db: Database
    media: MediaStore
    clock: Callable[[], float] = time.time
    tokens: TTLCache[str, Principal | None] = field(init=False)
    roles: TTLCache[tuple[int, int], str | None] = field(init=False)
    projects: TTLCache[int, Project] = field(init=False)
    # events audited in aggregate; flushed by the background lifespan
    tally: AuditTally = field(init=False)
    logins: LoginLimiter = field(init=False)  # failed sign-ins per address and pair
    hashing: HashGate = field(init=False)  # password hashes in flight
    trusted_proxies: tuple[Network, ...] = field(init=False)
    handles: TaskHandles = field(init=False)  # what annotators see instead of item ids
    prefill_key: bytes = field(init=False)  # decides gold's deliberately wrong pre-fills
    # set when the server is asked to stop: long work in threads (imports) gives up
    stopping: threading.Event = field(default_factory=threading.Event)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ttl = self.settings.auth_cache_seconds
        self.tokens = TTLCache(ttl, self.clock)
        self.roles = TTLCache(ttl, self.clock)
        self.projects = TTLCache(ttl, self.clock)
        s = self.settings
        self.tally = AuditTally(s.audit_tally_seconds)
        self.logins = LoginLimiter(
            per_address=s.login_free_failures_per_address,
            per_account=s.login_free_failures_per_account,
            base_seconds=s.login_backoff_seconds,
            max_seconds=s.login_backoff_max_seconds,
            quiet_seconds=s.login_forget_seconds,
            enabled=s.login_limits,
        )
        self.hashing = HashGate(s.password_hashes_in_flight, s.password_hash_queue)
        self.trusted_proxies = parse_networks(s.trusted_proxies)
        self.handles = TaskHandles(s.resolved_secret_key)
        self.prefill_key = prefill.key_from(s.resolved_secret_key)

    def now(self) -> float:
        return self.clock()

    async def run(
        self, fn: Callable[Concatenate[Any, P], V], /, *args: P.args, **kwargs: P.kwargs
    ) -> V:
        """Run a service function in the transaction it declares: the one way a route
        reaches the database (see :meth:`labelfarm.db.engine.Database.run_async`). A function
        that hashes a password first waits, on the loop, for one of the few hash slots."""
        if is_hashing(fn):
            async with self.hashing.slot():
                return await self.db.run_async(fn, *args, **kwargs)
        return await self.db.run_async(fn, *args, **kwargs)


def ctx_of(request: Any) -> AppContext:
    """The app's context, from a request."""
    ctx: AppContext = request.app.state.ctx
    return ctx
