"""What a job's work raises to its worker."""

from __future__ import annotations


class JobCancelled(Exception):
    """The job was cancelled (or its claim was lost): stop, and leave the row to the queue."""


class ExecutorError(Exception):
    """A task failed where it ran (the worker process or a Ray cluster); ``retryable`` when a
    lost node or worker process is to blame rather than the task itself."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
