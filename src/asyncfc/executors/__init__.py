"""Where a call runs: threads (default), processes (can kill a tool), Ray (a cluster).

One import for the developer and the scheduler: ``make_executor("threads" | "processes" |
"ray", **options)`` builds one, and :class:`Executor` (in :mod:`asyncfc.executors.base`)
is the interface every executor keeps, the contract the scheduler relies on. The thread
executor is :mod:`asyncfc.executors.threads`; the process and Ray executors import
optional packages and are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, get_args

from ..errors import ConfigurationError
from ._worker import MAX_RESULT_ITEMS
from .base import (
    Executor,
    ExecutorKind,
    ExecutorUnavailable,
    ToolFailed,
    ToolTimeout,
    WorkerLost,
)
from .threads import ThreadExecutor

if TYPE_CHECKING:
    from .processes import ProcessExecutor
    from .ray import RayExecutor

EXECUTOR_KINDS: tuple[str, ...] = get_args(ExecutorKind)

__all__ = [
    "EXECUTOR_KINDS",
    "MAX_RESULT_ITEMS",
    "Executor",
    "ExecutorKind",
    "ExecutorUnavailable",
    "ProcessExecutor",
    "RayExecutor",
    "ThreadExecutor",
    "ToolFailed",
    "ToolTimeout",
    "WorkerLost",
    "make_executor",
]


def make_executor(kind: str | Executor = "threads", **options: Any) -> Executor:
    """An executor by name (options go to its constructor), or ``kind`` itself if it is one.

    Common options: ``default_timeout``, ``max_concurrency``, ``tool_limits``; threads:
    ``max_threads``; processes: ``max_workers``; ray: ``address``, ``init_kwargs``,
    ``connect_timeout``, ``remote_async``, ``default_resources``. A kind whose extra is
    not installed raises :class:`ExecutorUnavailable` naming it.
    """
    if isinstance(kind, Executor):
        return kind
    if kind == "threads":
        return ThreadExecutor(**options)
    if kind == "processes":
        from .processes import ProcessExecutor

        return ProcessExecutor(**options)
    if kind == "ray":
        from .ray import RayExecutor

        return RayExecutor(**options)
    raise ConfigurationError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTOR_KINDS)}")


def __getattr__(name: str) -> Any:
    """``ProcessExecutor`` and ``RayExecutor`` are imported on first use (Ray is optional)."""
    if name == "ProcessExecutor":
        from .processes import ProcessExecutor

        return ProcessExecutor
    if name == "RayExecutor":
        from .ray import RayExecutor

        return RayExecutor
    raise AttributeError(name)
