"""Where a job's heavy work runs: in the worker process (:class:`LocalExecutor`) or as tasks
on a Ray cluster (:class:`labelfarm.jobs.ray_executor.RayExecutor`, when
``LABELFARM_RAY_ADDRESS`` is set).

An executor runs a module-level, pure function (picklable: it may run on another machine)
on plain data. :meth:`Executor.map` hands each result back to the caller's thread as it
arrives, so the job writes progress and results as it goes; it watches ``cancelled()`` and
stops the outstanding work when it turns true. A large argument every call needs (a trained
model) is given once as ``shared``: the function is then called ``fn(arg, shared)``, and a
cluster ships ``shared`` to each node once rather than with every task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from labelfarm.jobs.errors import ExecutorError, JobCancelled
from labelfarm.jobs.ray_executor import RayExecutor
from labelfarm.settings import Settings

R = TypeVar("R")


class Executor(Protocol):
    """Runs ``fn(arg)`` (``fn(arg, shared)`` when ``shared`` is given) somewhere.

    A task that raises: :class:`ExecutorError` with its message (``retryable=False``). Its
    worker process or node lost (after the cluster's own retries): :class:`ExecutorError`
    with ``retryable=True``, so the job queue runs the job again. ``cancelled()`` true:
    outstanding work is stopped and :class:`JobCancelled` raised."""

    name: str  # "local" | "ray"

    def call(
        self,
        fn: Callable[..., R],
        arg: Any,
        *,
        cancelled: Callable[[], bool],
        shared: Any = None,
    ) -> R: ...

    def map(
        self,
        fn: Callable[..., R],
        args: Sequence[Any],
        *,
        on_result: Callable[[int, R], None],
        cancelled: Callable[[], bool],
        shared: Any = None,
    ) -> None:
        """``on_result(i, fn(args[i]))`` for each ``i``, in the caller's thread as results
        come back (in order on :class:`LocalExecutor`; in any order on a cluster)."""
        ...


class LocalExecutor:
    """Runs each call in this process, one after another, checking ``cancelled()`` between
    them (a single call is not interrupted: the job's own progress checks stop it)."""

    name = "local"

    def call(
        self,
        fn: Callable[..., R],
        arg: Any,
        *,
        cancelled: Callable[[], bool],
        shared: Any = None,
    ) -> R:
        if cancelled():
            raise JobCancelled("cancelled")
        return _run(fn, arg, shared)

    def map(
        self,
        fn: Callable[..., R],
        args: Sequence[Any],
        *,
        on_result: Callable[[int, R], None],
        cancelled: Callable[[], bool],
        shared: Any = None,
    ) -> None:
        for i, arg in enumerate(args):
            if cancelled():
                raise JobCancelled("cancelled")
            on_result(i, _run(fn, arg, shared))


def _run(fn: Callable[..., R], arg: Any, shared: Any) -> R:
    try:
        return fn(arg) if shared is None else fn(arg, shared)
    except Exception as exc:
        raise ExecutorError(f"{type(exc).__name__}: {exc}", retryable=False) from exc


def executor_for(settings: Settings) -> Executor:
    """A :class:`RayExecutor` on ``settings.ray_address`` when it is set, else a
    :class:`LocalExecutor`. Ray is imported (and the cluster connected) on first use."""
    if settings.ray_address:
        return RayExecutor(settings.ray_address)
    return LocalExecutor()
