"""The greenlet bridge: synchronous code whose waits are awaited by the event loop."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from labelfarm.db import bridge


def _run(main: Any) -> Any:
    """asyncio.run in a thread of its own: the browser tests leave a loop running here."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main).result()


async def _double_later(x: int) -> int:
    await asyncio.sleep(0.01)
    return 2 * x


async def _fail_later() -> None:
    await asyncio.sleep(0)
    raise ValueError("from the loop")


def _sync_sum(xs: list[int]) -> int:
    assert bridge.bridged()
    return sum(bridge.wait(_double_later(x)) for x in xs)


def test_waits_run_on_the_loop_and_calls_interleave():
    async def main() -> tuple[list[int], float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        results = await asyncio.gather(*(bridge.spawn(_sync_sum, [i, i]) for i in range(20)))
        return results, loop.time() - start

    results, elapsed = _run(main())
    assert results == [4 * i for i in range(20)]
    # twenty calls of two 10 ms waits each overlap: far less than the 400 ms one after another
    assert elapsed < 0.2


def test_errors_cross_the_bridge_both_ways():
    def catches() -> str:
        try:
            bridge.wait(_fail_later())
        except ValueError as exc:
            return f"caught {exc}"
        return "not raised"

    def raises() -> None:
        raise KeyError("from the synchronous side")

    assert _run(bridge.spawn(catches)) == "caught from the loop"
    with pytest.raises(KeyError):
        _run(bridge.spawn(raises))


def test_wait_outside_spawn_is_refused():
    assert not bridge.bridged()
    coro = _double_later(1)
    with pytest.raises(RuntimeError, match="outside spawn"):
        bridge.wait(coro)
    coro.close()


def test_cancellation_reaches_the_synchronous_code():
    seen: list[str] = []

    def sleeper() -> None:
        try:
            bridge.wait(asyncio.sleep(10))
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def main() -> None:
        task = asyncio.create_task(bridge.spawn(sleeper))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    _run(main())
    assert seen == ["cancelled"]
