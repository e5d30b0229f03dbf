"""The per-process lookup cache of the hot path (tokens, roles, projects)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from labelfarm.web.context import TTLCache


def _run(main: Any) -> Any:
    """asyncio.run in a thread of its own: the browser tests leave a loop running here."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main).result()


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_concurrent_misses_share_one_lookup():
    clock = _Clock()
    cache: TTLCache[str, int] = TTLCache(10, clock)
    calls = 0

    async def load() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return 42

    async def main() -> list[int]:
        return list(await asyncio.gather(*(cache.fetch("k", load) for _ in range(50))))

    assert _run(main()) == [42] * 50
    assert calls == 1
    assert cache.get("k") == (True, 42)


def test_a_failed_lookup_is_not_shared_and_not_cached():
    clock = _Clock()
    cache: TTLCache[str, int] = TTLCache(10, clock)
    calls = 0

    async def flaky() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 1:
            raise LookupError("the first lookup fails")
        return 7

    async def main() -> list[object]:
        return list(
            await asyncio.gather(
                *(cache.fetch("k", flaky) for _ in range(3)), return_exceptions=True
            )
        )

    first, *others = _run(main())
    assert isinstance(first, LookupError)
    assert others == [7, 7]  # the callers who waited looked up for themselves


def test_entries_expire_within_ten_percent_of_the_ttl():
    clock = _Clock()
    cache: TTLCache[int, str] = TTLCache(100, clock)
    for key in range(200):
        cache.put(key, "v")
    clock.t = 89.9
    assert all(cache.get(key)[0] for key in range(200))
    clock.t = 110.1
    assert not any(cache.get(key)[0] for key in range(200))


@pytest.mark.parametrize("value", [None, 0])
def test_falsy_values_are_cached_too(value):
    cache: TTLCache[str, int | None] = TTLCache(10, _Clock())
    calls = 0

    async def load() -> int | None:
        nonlocal calls
        calls += 1
        return value

    async def main() -> None:
        assert await cache.fetch("k", load) == value
        assert await cache.fetch("k", load) == value

    _run(main())
    assert calls == 1  # an unknown token stays unknown for the TTL, without new lookups
