"""The ``"ray"`` executor: each sync call is a Ray task on a local or remote cluster.

Exactly once across machines: tasks get ``max_retries=0`` (Ray would re-run a task whose
worker died) unless the tool is declared ``idempotent``; a worker or node that dies
mid-call resolves the call to ``worker_lost``. A call past its timeout, or cancelled, is
stopped with ``ray.cancel(force=True)``, which kills the worker running it. Results are
awaited as asyncio futures: the event loop never blocks on ``ray.get``. asyncfc must be
importable on the cluster's workers (same image, or a ``runtime_env``). Needs the ``ray``
extra (Ray and cloudpickle).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ToolDefinitionError, describe
from ..tools import Tool
from . import _worker
from .base import Executor, ExecutorKind, ExecutorUnavailable, ToolFailed, WorkerLost, import_extra
from .processes import decode_outcome

__all__ = ["RayExecutor"]

_OPTIONS = ("num_cpus", "num_gpus", "memory", "accelerator_type")
"""Keys of ``Tool.resources`` that are Ray task options; any other key is a custom resource."""


def _ray() -> Any:
    """Ray, or :class:`ExecutorUnavailable` naming the extra that installs it."""
    return import_extra("ray", "ray")


def _entry(fn: Callable[..., Any]) -> Callable[[Mapping[str, Any]], bytes]:
    """The Ray task body for one tool: its outcome as bytes, never an exception."""

    def run(kwargs: Mapping[str, Any]) -> bytes:
        return _worker.encode_outcome(_worker.run_tool(fn, kwargs))

    run.__name__ = run.__qualname__ = getattr(fn, "__name__", "tool")
    return run


def _reachable(address: str, timeout: float) -> None:
    """Fail fast on an explicit ``host:port`` nobody listens on (``ray.init`` would retry forever)."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()):
        return  # "auto", "local", a path: Ray's own resolution
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ExecutorUnavailable(
            f"cannot reach the Ray cluster at {address} ({exc}); start one with "
            f"`ray start --head` or pass the address of a running head node"
        ) from None


class RayExecutor(Executor):
    """Sync tools (and, with ``remote_async=True``, async tools) run as Ray tasks.

    ``address``: ``None`` (``RAY_ADDRESS`` or a cluster already running on this machine,
    else a new local one), ``"host:port"`` of a head node's GCS, ``"ray://host:10001"``
    (Ray client), or ``"auto"``. Ray is initialised here (fail fast: an unreachable
    address raises :class:`ExecutorUnavailable` within ``connect_timeout``) unless it
    already is. ``init_kwargs`` go to ``ray.init``; :meth:`close` shuts down a cluster that
    this executor started. Per-tool ``resources`` (``{"num_cpus": 1, "GPU_A": 1}``) become
    task options; Ray's default is one CPU per task.
    """

    kind: ExecutorKind = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        init_kwargs: Mapping[str, Any] | None = None,
        connect_timeout: float = 5.0,
        remote_async: bool = False,
        default_resources: Mapping[str, float] | None = None,
        idempotent_retries: int = 3,
        default_timeout: float | None = 60.0,
        max_concurrency: int | None = None,
        tool_limits: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(
            default_timeout=default_timeout, max_concurrency=max_concurrency, tool_limits=tool_limits
        )
        self._pickle = import_extra("cloudpickle", "ray")
        self.address = address
        self.init_kwargs = dict(init_kwargs or {})
        self.connect_timeout = connect_timeout
        self.remote_async = remote_async
        self.default_resources = dict(default_resources or {})
        self.idempotent_retries = idempotent_retries
        self._owns_cluster = False
        self._remote: weakref.WeakKeyDictionary[Tool, Any] = weakref.WeakKeyDictionary()
        self._inflight: set[Any] = set()
        self.cancelled = 0
        """Tasks force-cancelled because their call timed out or was cancelled."""
        self._connect()

    def _connect(self) -> None:
        ray = _ray()
        if ray.is_initialized():
            return
        address = self.address or os.environ.get("RAY_ADDRESS")
        if address:
            _reachable(address, self.connect_timeout)
        kwargs = {"log_to_driver": True, **self.init_kwargs}
        try:
            ray.init(address=self.address, **kwargs)
        except ConnectionError as exc:
            raise ExecutorUnavailable(
                f"cannot connect to the Ray cluster at {address or 'auto'}: {exc}"
            ) from None
        self._owns_cluster = _started_here()  # a new local cluster is ours to stop; a joined one is not

    def uses_worker(self, tool: Tool) -> bool:
        """Sync tools, and async tools too with ``remote_async``, run as Ray tasks."""
        return self.remote_async or not tool.is_async

    def options_for(self, tool: Tool) -> dict[str, Any]:
        """The Ray task options of ``tool``'s calls."""
        wanted = {**self.default_resources, **(tool.resources or {})}
        opts: dict[str, Any] = {k: wanted.pop(k) for k in _OPTIONS if k in wanted}
        if wanted:
            opts["resources"] = wanted
        opts["max_retries"] = self.idempotent_retries if tool.idempotent else 0
        opts["retry_exceptions"] = False  # a tool's own exception is a value, never a retry
        opts["name"] = f"asyncfc:{tool.name}"
        return opts

    def check(self, tool: Tool) -> None:
        """Refuse a tool whose function cannot be pickled (it could never reach the cluster)."""
        try:
            self._pickle.dumps(tool.fn)
        except Exception as exc:
            raise ToolDefinitionError(
                f"tool {tool.name!r} cannot run as a Ray task: its function cannot be pickled "
                f"({describe(exc)})"
            ) from None

    def _remote_for(self, tool: Tool) -> Any:
        fn = self._remote.get(tool)
        if fn is None:
            ray = _ray()
            fn = self._remote[tool] = ray.remote(_entry(tool.fn)).options(**self.options_for(tool))
        return fn

    async def run_in_worker(
        self, tool: Tool, kwargs: Mapping[str, Any], timeout: float | None, on_start: Callable[[float], None]
    ) -> Any:
        """Run the call as a Ray task; on timeout or cancel the task is force-cancelled."""
        self._connect()  # after close(), a later call starts or joins a cluster again
        try:
            remote = self._remote_for(tool)
            ref = remote.remote(dict(kwargs))
        except Exception as exc:  # pickling the function or the arguments failed
            raise ToolFailed(exc) from None
        on_start(time.perf_counter())
        return decode_outcome(await self.with_timeout(self._await(ref), timeout))

    async def _await(self, ref: Any) -> bytes:
        ray = _ray()
        self._inflight.add(ref)
        try:
            data: bytes = await asyncio.wrap_future(ref.future())
            return data
        except asyncio.CancelledError:
            self.cancelled += 1
            ray.cancel(ref, force=True)
            raise
        except ray.exceptions.RayTaskError as exc:  # the task body itself failed (e.g. an import)
            raise ToolFailed(exc.cause if isinstance(exc.cause, BaseException) else exc) from None
        except ray.exceptions.RayError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise WorkerLost(
                f"the Ray worker running the call was lost ({type(exc).__name__}: {first})"
            ) from None
        finally:
            self._inflight.discard(ref)

    def release_workers(self, wait: bool) -> None:
        """Force-cancel the tasks in flight; shut down a cluster this executor started."""
        ray = _ray()
        if not ray.is_initialized():
            return
        for ref in list(self._inflight):
            ray.cancel(ref, force=True)
        self._remote.clear()
        if self._owns_cluster:
            ray.shutdown()
            self._owns_cluster = False


def _started_here() -> bool:
    """Whether the last ``ray.init`` started a head node in this process (private API)."""
    try:
        node = _ray()._private.worker._global_node
        return bool(node is not None and node.head)
    except Exception:  # noqa: BLE001 - when unsure, do not stop the cluster
        return False
