"""Run synchronous code on the event loop while its I/O waits asynchronously.

The hot path's services (:mod:`labelfarm.services.tasks`) are plain synchronous functions
over a :class:`labelfarm.db.tx.Tx`: tests, the CLI and SQLite run them directly. On
PostgreSQL the server must not block its event loop for a network round trip, yet the same
functions should run. :func:`spawn` runs such a function (``Database.run_async`` does)
in a greenlet; when its cursor needs the database, :func:`wait` hands the awaitable to the
event loop's side and the greenlet resumes with the result. The function's code stays as
it is, and other requests proceed meanwhile. (This is the technique SQLAlchemy uses for
its asyncio extension.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import greenlet

T = TypeVar("T")


class _Bridged(greenlet.greenlet):
    """A greenlet running synchronous code on behalf of an awaiting coroutine."""

    def __init__(self, fn: Callable[..., Any], driver: greenlet.greenlet) -> None:
        super().__init__(fn, driver)
        self.driver = driver
        # contextvars set by the caller (request-scoped state) stay visible inside
        self.gr_context = driver.gr_context


def bridged() -> bool:
    """True inside :func:`spawn`: :func:`wait` may be used here."""
    return isinstance(greenlet.getcurrent(), _Bridged)


def wait(awaitable: Awaitable[T]) -> T:
    """The result of ``awaitable``, awaited by the event loop; only inside :func:`spawn`."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Bridged):
        raise RuntimeError("wait() outside spawn(): no event loop to await on")
    return current.driver.switch(awaitable)


async def spawn(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)``; each :func:`wait` inside it is awaited here."""
    child = _Bridged(fn, greenlet.getcurrent())
    step = child.switch(*args)
    while not child.dead:
        try:
            value = await step
        except BaseException as exc:  # the awaited call failed: raise it inside fn
            step = child.throw(exc)
        else:
            step = child.switch(value)
    return step
