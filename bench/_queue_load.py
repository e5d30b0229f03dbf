"""Runs one load phase: starts ``_loadclient.py`` in its own process and reads its result."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from _targets import BenchError, Target

LOAD_CLIENT = Path(__file__).resolve().with_name("_loadclient.py")
ITEM_BUDGET = 0.9  # stop a run before it drains the project: never measure an empty queue


def run_load(
    target: Target, project_id: int, tokens: list[str], plan: Any, client: str, items: int
) -> dict[str, Any]:
    """C = ``len(tokens)`` annotators on ``project_id`` for ``plan.duration_s`` seconds,
    measured after ``plan.warmup_s`` seconds (if the plan has it) that are not."""
    warmup_s = float(getattr(plan, "warmup_s", 0.0))
    config = {
        **target.load_config(project_id),
        "tokens": tokens,
        "client": client,
        "duration_s": plan.duration_s,
        "warmup_s": warmup_s,
        "keep_samples": bool(getattr(plan, "keep_samples", False)),
        "timeout_s": plan.timeout_s,
        "overlap": 1,
        "max_cycles": int(items * ITEM_BUDGET),
        "server_pid": target.server_pid,
    }
    hard_limit = warmup_s + plan.duration_s + 2 * plan.timeout_s + 60
    try:
        done = subprocess.run(
            # -P: keep bench/ off sys.path, where queue.py would shadow the stdlib's queue.
            [sys.executable, "-P", str(LOAD_CLIENT)],
            input=orjson.dumps(config),
            capture_output=True,
            timeout=hard_limit,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"load client still running after {hard_limit:.0f} s") from exc
    if done.returncode != 0:
        raise BenchError(f"load client failed:\n{done.stderr.decode(errors='replace')[-3000:]}")
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result
