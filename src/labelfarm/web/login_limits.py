"""Sign-in abuse: who the client is, how many failed sign-ins it may make, and how many
password hashes run at once.

* :func:`client_address`: the direct peer, unless that peer is a trusted proxy
  (``trusted_proxies``); then the rightmost ``X-Forwarded-For`` address that is not one.
* :class:`LoginLimiter`: failed sign-ins counted per client address and per (account,
  address) pair. After a number of free failures each further one makes the key wait, twice as
  long each time up to a cap, and an attempt while a key waits is refused with 429 and
  ``Retry-After`` before any password is hashed. There is no per-account key, so no one can
  lock an annotator out from another address. The state is per server process: with several
  processes an address gets each process's allowance (the back-off still grows in each).
  Memory is bounded: a fixed number of keys of each kind, the least recently failing
  forgotten first, and a key forgotten once it has been quiet for a while.
* :class:`HashGate`: at most a few password hashes in flight per process; further callers
  wait on the event loop (no worker thread is taken while waiting) and, past a queue bound,
  are refused at once with 503.
"""

from __future__ import annotations

import asyncio
import ipaddress
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from labelfarm.errors import ServerBusy, TooManyRequests

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Addresses and CIDR blocks (``10.0.0.0/8``, ``::1``) as networks."""
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries if e.strip())


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(text: str, trusted: tuple[Network, ...]) -> bool:
    ip = _ip(text)
    return ip is not None and any(ip in net for net in trusted)


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: tuple[Network, ...]
) -> str:
    """The client's address: the direct ``peer``, or, when the peer is a trusted proxy, the
    rightmost address of the ``X-Forwarded-For`` headers that is not a trusted proxy (each
    proxy appends the address it saw, so what lies left of that can be forged)."""
    if not peer:
        return "unknown"
    if not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            ip = _ip(hop)
            return str(ip) if ip is not None else hop[:64]
    return hops[0] if hops else peer


@dataclass(slots=True)
class _Strikes:
    failures: int = 0
    blocked_until: float = 0.0
    last: float = 0.0


class _Keyed:
    """Failure counts of one kind of key, least recently failing first, at most ``max_keys``."""

    def __init__(self, free: int, max_keys: int) -> None:
        self.free = free
        self.max_keys = max_keys
        self.entries: OrderedDict[object, _Strikes] = OrderedDict()

    def wait(self, key: object, now: float) -> float:
        entry = self.entries.get(key)
        return max(0.0, entry.blocked_until - now) if entry else 0.0

    def strike(self, key: object, now: float, limiter: LoginLimiter) -> None:
        entry = self.entries.pop(key, None) or _Strikes()
        entry.failures += 1
        entry.last = now
        self.entries[key] = entry  # now the most recent
        self.extend(entry, now, limiter)
        self._forget(now, limiter.quiet_seconds)

    def extend(self, entry: _Strikes, now: float, limiter: LoginLimiter) -> None:
        over = entry.failures - self.free
        if over >= 0:
            wait = min(limiter.max_seconds, limiter.base_seconds * 2 ** min(over, 40))
            entry.blocked_until = max(entry.blocked_until, now + wait)

    def undo(self, key: object) -> None:
        entry = self.entries.get(key)
        if entry is not None and entry.failures > 0:
            entry.failures -= 1
            if entry.failures < self.free:
                entry.blocked_until = 0.0

    def _forget(self, now: float, quiet: float) -> None:
        while self.entries:
            _, oldest = next(iter(self.entries.items()))
            if (
                len(self.entries) <= self.max_keys
                and now < max(oldest.last, oldest.blocked_until) + quiet
            ):
                break
            self.entries.popitem(last=False)


class LoginLimiter:
    """Failed sign-ins per address and per (account, address); see the module's docstring.

    A sign-in calls :meth:`attempt` before hashing (it raises TooManyRequests while a key
    waits, else counts the attempt as failed until told otherwise), then :meth:`failed` or
    :meth:`succeeded`. Counting first keeps concurrent attempts from all passing the check.
    """

    def __init__(
        self,
        *,
        per_address: int,
        per_account: int,
        base_seconds: float,
        max_seconds: float,
        quiet_seconds: float,
        max_keys: int = 10_000,
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self.base_seconds = base_seconds
        self.max_seconds = max_seconds
        self.quiet_seconds = quiet_seconds
        self.addresses = _Keyed(per_address, max_keys)
        self.pairs = _Keyed(per_account, max_keys)

    @staticmethod
    def _pair(address: str, username: str) -> tuple[str, str]:
        return (username.strip().lower()[:150], address)

    def attempt(self, address: str, username: str, now: float) -> None:
        if not self.enabled:
            return
        pair = self._pair(address, username)
        wait = max(self.addresses.wait(address, now), self.pairs.wait(pair, now))
        if wait > 0:
            raise TooManyRequests(
                "too many failed sign-ins; try again later",
                wait,
                [{"field": "username", "reason": "too many failed sign-ins from this address"}],
            )
        self.addresses.strike(address, now, self)
        self.pairs.strike(pair, now, self)

    def failed(self, address: str, username: str, now: float) -> None:
        """The attempt failed: its wait starts from now (hashing took a while)."""
        if not self.enabled:
            return
        for keyed, key in ((self.addresses, address), (self.pairs, self._pair(address, username))):
            entry = keyed.entries.get(key)
            if entry is not None:
                keyed.extend(entry, now, self)

    def succeeded(self, address: str, username: str) -> None:
        """The attempt was right: the pair starts afresh and the address's count is undone."""
        if not self.enabled:
            return
        self.pairs.entries.pop(self._pair(address, username), None)
        self.addresses.undo(address)

    def undone(self, address: str, username: str) -> None:
        """The attempt ended without checking the password (the server was busy): uncount it."""
        if not self.enabled:
            return
        self.addresses.undo(address)
        self.pairs.undo(self._pair(address, username))


class _LoopGate:
    def __init__(self, slots: int) -> None:
        self.semaphore = asyncio.Semaphore(slots)
        self.waiting = 0


class HashGate:
    """At most ``slots`` password hashes at a time per event loop (a server process); up to
    ``queue`` more callers wait on the loop, any beyond that are refused with 503."""

    def __init__(self, slots: int, queue: int) -> None:
        self.slots = slots
        self.queue = queue
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopGate] = (
            weakref.WeakKeyDictionary()
        )

    def _gate(self) -> _LoopGate:
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = _LoopGate(self.slots)
        return gate

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        gate = self._gate()
        if gate.semaphore.locked() and gate.waiting >= self.queue:
            raise ServerBusy("too many sign-ins at once; try again shortly", 1)
        gate.waiting += 1
        try:
            await gate.semaphore.acquire()
        finally:
            gate.waiting -= 1
        try:
            yield
        finally:
            gate.semaphore.release()
