"""Job kinds for the job tests only, registered on import (a worker subprocess loads them
with ``labelfarm worker --import job_test_kinds``)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from labelfarm.jobs.context import JobContext
from labelfarm.jobs.kinds import job_kind


def _note(ctx: JobContext, event: str) -> None:
    """Append "<job id> <run> <event> <pid>" to the file named in the params, if any."""
    log = ctx.job.params.get("log")
    if log:
        with Path(log).open("a") as f:
            f.write(f"{ctx.job.id} {ctx.claim.attempts} {event} {os.getpid()}\n")


@job_kind("test-steps")
def steps(ctx: JobContext) -> dict[str, Any]:
    """``steps`` steps of ``step_seconds`` each, reporting progress after each."""
    n = int(ctx.job.params.get("steps", 3))
    pause = float(ctx.job.params.get("step_seconds", 0.0))
    _note(ctx, "start")
    for i in range(n):
        ctx.progress(i, n, f"step {i + 1} of {n}")
        time.sleep(pause)
    _note(ctx, "end")
    return {"steps": n, "pid": os.getpid()}


@job_kind("test-flaky")
def flaky(ctx: JobContext) -> dict[str, Any]:
    """Fails on its first ``fail_runs`` runs, then succeeds."""
    _note(ctx, "start")
    if ctx.claim.attempts <= int(ctx.job.params.get("fail_runs", 0)):
        raise RuntimeError(f"run {ctx.claim.attempts} broke")
    return {"run": ctx.claim.attempts}


RUNS: list[tuple[int, int]] = []  # (job id, run) of every test-count run in this process


@job_kind("test-count")
def count(ctx: JobContext) -> dict[str, Any]:
    """Records its run, in memory and in the params' log file; takes ``seconds``."""
    RUNS.append((ctx.job.id, ctx.claim.attempts))
    _note(ctx, "start")
    time.sleep(float(ctx.job.params.get("seconds", 0.0)))
    return {"pid": os.getpid()}


@job_kind("test-bad-result")
def bad_result(ctx: JobContext) -> dict[str, Any]:
    """Returns what JSON cannot hold."""
    return {"when": object()}
