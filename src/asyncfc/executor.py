"""Kept for imports written before executors became a package: see :mod:`asyncfc.executors`."""

from .executors import (
    Executor,
    ExecutorUnavailable,
    ThreadExecutor,
    ToolFailed,
    ToolTimeout,
    WorkerLost,
    make_executor,
)

__all__ = [
    "Executor",
    "ExecutorUnavailable",
    "ThreadExecutor",
    "ToolFailed",
    "ToolTimeout",
    "WorkerLost",
    "make_executor",
]
