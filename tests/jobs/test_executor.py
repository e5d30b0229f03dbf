"""The in-process executor, and which executor the settings choose (no Ray needed here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from labelfarm.jobs.errors import ExecutorError, JobCancelled
from labelfarm.jobs.executor import LocalExecutor, executor_for
from labelfarm.jobs.ray_executor import RayExecutor
from labelfarm.settings import Settings


def never() -> bool:
    return False


def halve(x: int) -> float:
    if x < 0:
        raise ValueError(f"negative: {x}")
    return x / 2


def scale(x: int, factor: int) -> int:
    return x * factor


def test_map_runs_in_order_in_this_process() -> None:
    got: list[tuple[int, float]] = []
    LocalExecutor().map(
        halve, [4, 2, 8], on_result=lambda i, r: got.append((i, r)), cancelled=never
    )
    assert got == [(0, 2.0), (1, 1.0), (2, 4.0)]
    assert LocalExecutor().call(halve, 9, cancelled=never) == 4.5


def test_shared_is_the_second_argument() -> None:
    got: dict[int, int] = {}
    LocalExecutor().map(scale, [1, 2, 3], on_result=got.__setitem__, cancelled=never, shared=10)
    assert got == {0: 10, 1: 20, 2: 30}
    assert LocalExecutor().call(scale, 4, cancelled=never, shared=3) == 12


def test_cancel_is_checked_between_items() -> None:
    ran: list[int] = []
    with pytest.raises(JobCancelled):
        LocalExecutor().map(
            halve, range(10), on_result=lambda i, r: ran.append(i), cancelled=lambda: len(ran) >= 3
        )
    assert ran == [0, 1, 2]
    with pytest.raises(JobCancelled):
        LocalExecutor().call(halve, 1, cancelled=lambda: True)


def test_a_task_error_is_a_final_executor_error() -> None:
    got: list[int] = []
    with pytest.raises(ExecutorError) as caught:
        LocalExecutor().map(
            halve, [2, -1, 4], on_result=lambda i, r: got.append(i), cancelled=never
        )
    assert caught.value.retryable is False
    assert str(caught.value) == "ValueError: negative: -1"
    assert isinstance(caught.value.__cause__, ValueError)
    assert got == [0]


def test_what_on_result_raises_is_not_wrapped() -> None:
    def on_result(i: int, r: float) -> None:
        raise JobCancelled("the job's progress write found it cancelled")

    with pytest.raises(JobCancelled):
        LocalExecutor().map(halve, [2], on_result=on_result, cancelled=never)


def test_executor_for_the_settings(tmp_path: Path) -> None:
    base = Settings(data_dir=tmp_path, secret_key="test-secret")
    assert executor_for(base).name == "local"
    chosen = executor_for(base.model_copy(update={"ray_address": "10.0.0.5:6379"}))
    assert isinstance(chosen, RayExecutor)
    assert (chosen.name, chosen.address) == ("ray", "10.0.0.5:6379")  # not connected yet


def test_ray_never_starts_a_cluster_of_its_own() -> None:
    with pytest.raises(ExecutorError, match="running cluster"):
        RayExecutor("local").call(halve, 2, cancelled=never)


def test_without_ray_installed_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    with pytest.raises(ExecutorError, match=r"pip install 'labelfarm\[ray\]'") as caught:
        RayExecutor("10.0.0.5:6379").call(halve, 2, cancelled=never)
    assert caught.value.retryable is False
