"""Answers that take as long whatever the server did, so their timing tells nothing.

A submission that answers a gold item does more work than one that does not (the answer is
scored and the annotator's standing updated), so an annotator timing their submissions
could learn afterwards which tasks were gold, and tell others what those items look like;
handing out a gold task runs other statements than taking one from the queue. In a project
that hands out gold, next (per batch size), submit and skip answers are padded to a high
quantile of the recent durations of the same call in the same project, plus up to 2 ms at
random: almost every answer then takes that long, gold or not. The wait is an ``asyncio``
sleep after the transaction committed: it holds no connection and no lock, and the annotate
page fetches and sends in the background, so no one waits for it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque

from labelfarm.web.context import AppContext

WINDOW = 512  # recent durations kept per project and call
QUANTILE = 0.99  # answers are padded to this quantile of them
REFRESH = 16  # the target is recomputed every this many calls
MAX_PACERS = 10_000
JITTER = 0.002  # seconds, at most, added at random to every wait
MAX_WAIT = 0.25  # seconds: a burst of slow calls (a cold start, a checkpoint) never makes
# every later answer wait for long

_jitter = random.SystemRandom()


class Pacer:
    """Recent durations of one call in one project, and the duration to pad answers to."""

    def __init__(self) -> None:
        self._recent: deque[float] = deque(maxlen=WINDOW)
        self._target = 0.0
        self._since = 0

    @property
    def target(self) -> float:
        return self._target

    def record(self, seconds: float) -> None:
        self._recent.append(seconds)
        self._since += 1
        if self._since >= REFRESH or len(self._recent) < REFRESH:
            self._since = 0
            ordered = sorted(self._recent)
            self._target = ordered[int(QUANTILE * (len(ordered) - 1))]

    async def pad(self, started: float) -> None:
        """Record how long the work since ``started`` (``time.perf_counter()``) took, then
        wait until the answer has taken the target duration."""
        elapsed = time.perf_counter() - started
        self.record(elapsed)
        # the event loop wakes on whole milliseconds counted from the sleep's start, so a
        # sleep alone would end at a point that depends on the work's duration: a random
        # part spreads it
        wait = min(MAX_WAIT, max(0.0, self._target - elapsed))
        await asyncio.sleep(wait + _jitter.uniform(0, JITTER))


def pacer(ctx: AppContext, project_id: int, call: str) -> Pacer:
    """The process's pacer of ``call`` in the project (made on first use)."""
    pacers: dict[tuple[int, str], Pacer] = ctx.extra.setdefault("pacers", {})
    found = pacers.get((project_id, call))
    if found is None:
        if len(pacers) >= MAX_PACERS:
            pacers.clear()
        found = pacers[(project_id, call)] = Pacer()
    return found
