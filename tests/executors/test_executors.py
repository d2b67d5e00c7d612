"""Executors: threads, processes, Ray (a real local cluster, started and stopped here).

Every guarantee that holds for threads is checked for each: serializability (the property
test of ``test_serializability``, with its tools' state in files so that tools in worker
processes or Ray tasks share it with those on the event loop), errors as values, timeouts
(a hung sync tool is killed by processes and Ray, so its side effect never happens), and
exactly once when a worker dies mid-call (``worker_lost``, no re-run, siblings fine).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, given, settings

from asyncfc import AsyncFCError, ErrorKind, ToolDefinitionError, tool
from asyncfc.agent import Agent
from asyncfc.executors import (
    Executor,
    ExecutorUnavailable,
    ThreadExecutor,
    ToolFailed,
    make_executor,
)
from asyncfc.executors import base as executor_base
from asyncfc.mode import ModeName as Mode
from asyncfc.testing.scripted import ScriptedCall, ScriptedModel, Turn
from asyncfc.tools import Tool
from conftest import run
from core.test_serializability import KEYS, as_turn, programs

CHILDREN = ["e", "f"]
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A local Ray cluster on 127.0.0.1 for this module; workers see the tests' sys.path."""
    ray.init(
        _node_ip_address="127.0.0.1",
        num_cpus=4,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}},
    )
    try:
        yield
    finally:
        ray.shutdown()


class FileStore:
    """A dict of ints kept as one file per key (visible to every process on this machine)."""

    def __init__(self, root: str) -> None:
        self.root = root

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key.replace("/", "__"))

    def reset(self, values: dict[str, int]) -> None:
        for name in os.listdir(self.root):
            os.remove(os.path.join(self.root, name))
        for k, v in values.items():
            self[k] = v

    def names(self) -> list[str]:
        return sorted(n.replace("__", "/") for n in os.listdir(self.root) if not n.startswith("."))

    def __getitem__(self, key: str) -> int:
        with open(self._path(key)) as f:
            return int(json.load(f))

    def __setitem__(self, key: str, value: int) -> None:
        tmp = self._path("." + key)
        with open(tmp, "w") as f:
            json.dump(value, f)
        os.replace(tmp, self._path(key))

    def as_dict(self) -> dict[str, int]:
        return {k: self[k] for k in self.names()}


def make_file_tools(store: FileStore) -> list[Tool]:
    """The tools of ``test_serializability.make_tools`` over a :class:`FileStore`."""

    def subtree(key: str) -> list[str]:
        return [k for k in store.names() if k == key or k.startswith(key + "/")]

    def snapshot(key: str) -> int:
        out = 0
        for k in subtree(key):
            out = (out * 31 + store[k]) % 1_000_003
        return out

    @tool(reads=["store/{key}"])
    async def read(key: str, delay: float) -> int:
        await asyncio.sleep(delay)
        return snapshot(key)

    @tool(reads=["store/{key}"])
    def read_s(key: str, delay: float) -> int:
        time.sleep(delay)
        return snapshot(key)

    @tool(writes=["store/{key}"])
    async def write(key: str, value: int, delay: float) -> int:
        await asyncio.sleep(delay)
        for k in subtree(key):
            store[k] = value
        return value

    @tool(writes=["store/{key}"])
    def write_s(key: str, value: int, delay: float) -> int:
        time.sleep(delay)
        for k in subtree(key):
            store[k] = value
        return value

    @tool(reads=["store/{key}"], writes=["store/{key}"])
    async def rmw(key: str, delta: int, delay: float) -> int:
        old = {k: store[k] for k in subtree(key)}
        await asyncio.sleep(delay)
        for k, v in old.items():
            store[k] = (v * 3 + delta) % 1_000_003
        return snapshot(key)

    @tool(reads=["store/{key}"], writes=["store/{key}"])
    def rmw_s(key: str, delta: int, delay: float) -> int:
        old = {k: store[k] for k in subtree(key)}
        time.sleep(delay)
        for k, v in old.items():
            store[k] = (v * 3 + delta) % 1_000_003
        return snapshot(key)

    @tool(reads=["store/{src}"], writes=["store/{dst}"])
    async def copy(src: str, dst: str, delay: float) -> int:
        value = snapshot(src)
        await asyncio.sleep(delay)
        for k in subtree(dst):
            store[k] = value
        return value

    @tool(reads=["store"])
    async def total(delay: float) -> int:
        value = sum(store[k] for k in store.names()) % 1_000_003
        await asyncio.sleep(delay)
        return value

    @tool  # unannotated: the root, runs alone
    def reset(delay: float) -> int:
        keys = store.names()
        time.sleep(delay)
        for k in keys:
            store[k] = 1
        return len(keys)

    @tool(pure=True)
    def compute(x: int, y: int, delay: float) -> int:
        time.sleep(delay)
        return (x * 7 + y) % 1_000_003

    @tool(pure=True)
    async def key_of(i: int, delay: float) -> str:
        await asyncio.sleep(delay)
        return KEYS[i % len(KEYS)]

    @tool(pure=True)
    async def child_of(i: int, delay: float) -> str:
        await asyncio.sleep(delay)
        return CHILDREN[i % len(CHILDREN)]

    return [read, read_s, write, write_s, rmw, rmw_s, copy, total, reset, compute, key_of, child_of]


@pytest.fixture(scope="module", params=["threads", "processes", "ray"])
def executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    """One executor per kind for all examples (workers are started once)."""
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    ex = make_executor(request.param, max_workers=4) if request.param == "processes" else None
    ex = ex or make_executor(request.param)
    yield ex
    ex.shutdown(wait=True)


EXAMPLES = {"threads": 60, "processes": 20, "ray": 12}


async def execute(
    mode: Mode, steps: list[list[tuple[str, dict[str, Any]]]], executor: Executor, root: str
) -> tuple[list[Any], dict[str, int]]:
    store = FileStore(root)
    store.reset({k: i + 1 for i, k in enumerate(KEYS)})
    turns: list[Turn] = [as_turn(s) for s in steps]
    turns.append("done")
    agent = Agent(  # random programs write without looking: the order is under test, not the hold
        ScriptedModel(turns),
        make_file_tools(store),
        mode=mode,
        max_steps=50,
        executor=executor,
        hold_blind_writes=False,
    )
    result = await agent.run("run the program")
    assert result.stop_reason == "answer"
    calls = [(c.name, c.resolved_arguments, c.value, c.error) for c in result.calls]
    return calls, store.as_dict()


def test_async_equals_sync_on_every_executor(executor: Executor) -> None:
    examples = EXAMPLES[executor.kind]

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(programs())
    def check(steps: list[list[tuple[str, dict[str, Any]]]]) -> None:
        with tempfile.TemporaryDirectory() as root:
            sync_calls, sync_store = run(execute("sync", steps, executor, root))
            async_calls, async_store = run(execute("async", steps, executor, root))
        assert all(err is None for *_, err in sync_calls), sync_calls
        assert async_calls == sync_calls
        assert async_store == sync_store

    check()


# -- errors, timeouts, lost workers ----------------------------------------------------


class Abort(BaseException):
    """A tool's own BaseException subclass: must resolve as tool_error on every executor."""


def kind_executor(request: pytest.FixtureRequest, kind: str, **options: Any) -> Executor:
    if kind == "ray":
        request.getfixturevalue("ray_cluster")
    return make_executor(kind, **options)


def wait_gone(pid: int, guard_s: float = 60.0) -> bool:
    """Wait until process ``pid`` has ended (a zombie counts as ended); whether it did.

    ``guard_s`` only keeps a regression from hanging the run: a killed worker is gone in
    milliseconds, so the test never depends on how long that takes.
    """
    try:
        proc = psutil.Process(pid)
        for _ in range(int(guard_s / 0.05)):
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
            try:
                proc.wait(timeout=0.05)
                return True
            except psutil.TimeoutExpired:
                continue
    except psutil.NoSuchProcess:
        return True
    return False


def _errors_tools(root: str) -> list[Tool]:
    @tool(pure=True)
    def double(x: int) -> int:
        return x * 2

    @tool(pure=True)
    def abort(x: int) -> int:
        raise Abort(f"stop at {x}")

    @tool(pure=True)
    def exit_(x: int) -> int:
        raise SystemExit(x)

    @tool(pure=True)
    def opaque(x: int) -> Any:
        return threading_lock_holder()

    return [double, abort, exit_, opaque]


class threading_lock_holder:  # noqa: N801 - a value that cannot be pickled
    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()

    def __repr__(self) -> str:
        return "<lock holder>"


@pytest.mark.parametrize("kind", ["threads", "processes", "ray"])
def test_errors_are_values_on_every_executor(
    request: pytest.FixtureRequest, kind: str, tmp_path: Path
) -> None:
    executor = kind_executor(request, kind)
    calls = [
        ScriptedCall("double", {"x": 2}),
        ScriptedCall("abort", {"x": 3}),
        ScriptedCall("exit_", {"x": 4}),
        ScriptedCall("opaque", {"x": 5}),
    ]
    agent = Agent(
        ScriptedModel([calls, "done"]), _errors_tools(str(tmp_path)), mode="async", executor=executor
    )
    try:
        result = agent.run_sync("go")
    finally:
        executor.shutdown(wait=True)
    by_name = {c.name: c for c in result.calls}
    assert by_name["double"].value == 4
    assert by_name["abort"].error is not None and by_name["abort"].error.kind is ErrorKind.TOOL_ERROR
    assert "Abort: stop at 3" in by_name["abort"].error.message
    assert by_name["exit_"].error is not None and "SystemExit" in by_name["exit_"].error.message
    assert by_name["opaque"].value == "<lock holder>"  # not JSON, not picklable: its repr text


def _hang_tools(root: Path, timeout: float = 0.3) -> list[Tool]:
    @tool(pure=True, timeout=timeout)
    def hang(x: int) -> int:
        (root / f"pid-{x}").write_text(str(os.getpid()))
        time.sleep(3600)  # never returns by itself: only a kill ends it
        (root / f"side-{x}").write_text("written after the timeout")
        return x

    @tool(pure=True)
    def double(x: int) -> int:
        return x * 2

    return [hang, double]


@pytest.mark.parametrize("kind", ["processes", "ray"])
def test_hung_sync_tool_is_killed_at_its_timeout(
    request: pytest.FixtureRequest, kind: str, tmp_path: Path
) -> None:
    """The call resolves to ``timeout`` without waiting for the tool (which never returns),
    and the worker that ran it is killed, so the tool's side effect never happens.

    A process worker's timeout counts from the tool's start; a Ray task's from its
    submission, so there a warm worker and a longer timeout let the tool start first.
    """
    executor = kind_executor(request, kind)
    tools = _hang_tools(tmp_path, timeout=0.3 if kind == "processes" else 3.0)
    agent = Agent(
        ScriptedModel([[ScriptedCall("hang", {"x": 1}), ScriptedCall("double", {"x": 2})], "done"]),
        tools,
        mode="async",
        executor=executor,
    )
    try:
        warm_up = Agent(ScriptedModel([[ScriptedCall("double", {"x": 0})], "done"]), tools, executor=executor)
        assert warm_up.run_sync("start a worker").calls[0].value == 0
        result = agent.run_sync("go")
        hang, double = result.calls
        assert hang.error is not None and hang.error.kind is ErrorKind.TIMEOUT, hang.error
        assert double.value == 4
        started = tmp_path / "pid-1"
        if started.exists() or kind == "processes":  # a Ray task may time out before it starts
            pid = int(started.read_text())
            assert pid != os.getpid()
            assert wait_gone(pid), "the worker running the hung tool is still alive"
        assert not (tmp_path / "side-1").exists(), "the killed tool's side effect happened"
    finally:
        executor.shutdown(wait=True)


def _victim_tools(root: Path) -> list[Tool]:
    @tool(pure=True)
    def victim(x: int) -> int:
        with open(root / "runs", "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(5)
        return x

    @tool(pure=True)
    def double(x: int) -> int:
        time.sleep(0.05)
        return x * 2

    return [victim, double]


@pytest.mark.parametrize("kind", ["processes", "ray"])
def test_worker_killed_mid_call_is_worker_lost(
    request: pytest.FixtureRequest, kind: str, tmp_path: Path
) -> None:
    executor = kind_executor(request, kind)
    runs = tmp_path / "runs"

    async def kill_victim() -> None:
        # The file exists before the worker's line is written: wait for a whole line.
        while not (runs.exists() and runs.read_text().endswith("\n")):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        os.kill(int(runs.read_text().split()[0]), signal.SIGKILL)

    async def main() -> Any:
        agent = Agent(
            ScriptedModel(
                [
                    [
                        ScriptedCall("victim", {"x": 1}),
                        ScriptedCall("double", {"x": 2}),
                        ScriptedCall("double", {"x": 3}),
                    ],
                    "done",
                ]
            ),
            _victim_tools(tmp_path),
            mode="async",
            executor=executor,
        )
        killer = asyncio.create_task(kill_victim())
        result = await agent.run("go")
        await killer
        await executor.close()
        return result

    result = run(main())
    victim, d2, d3 = result.calls
    assert victim.error is not None and victim.error.kind is ErrorKind.WORKER_LOST, victim.error
    assert (d2.value, d3.value) == (4, 6)
    assert len(runs.read_text().split()) == 1, "the lost call ran again"


def test_ray_task_options(request: pytest.FixtureRequest) -> None:
    from asyncfc.executors import RayExecutor

    executor = kind_executor(request, "ray")
    assert isinstance(executor, RayExecutor)

    @tool(pure=True, resources={"num_cpus": 0.5, "special": 1})
    def heavy(x: int) -> int:
        return x

    @tool(pure=True, idempotent=True)
    def again(x: int) -> int:
        return x

    assert executor.options_for(heavy) == {
        "num_cpus": 0.5,
        "resources": {"special": 1},
        "max_retries": 0,
        "retry_exceptions": False,
        "name": "asyncfc:heavy",
    }
    assert executor.options_for(again)["max_retries"] == 3


def test_ray_remote_async_tools_run_on_the_cluster(request: pytest.FixtureRequest) -> None:
    request.getfixturevalue("ray_cluster")
    executor = make_executor("ray", remote_async=True)

    @tool(pure=True)
    async def where(x: int) -> int:
        await asyncio.sleep(0.01)
        return os.getpid()

    agent = Agent(
        ScriptedModel([[ScriptedCall("where", {"x": 1})], "done"]), [where], mode="async", executor=executor
    )
    result = agent.run_sync("go")
    assert isinstance(result.calls[0].value, int) and result.calls[0].value != os.getpid()


def test_unpicklable_tool_is_a_clear_error() -> None:
    import threading

    lock = threading.Lock()

    @tool(pure=True)
    def locked(x: int) -> int:
        with lock:
            return x

    executor = make_executor("processes")
    with pytest.raises(ToolDefinitionError, match="cannot be pickled"):
        executor.check(locked)
    agent = Agent(
        ScriptedModel([[ScriptedCall("locked", {"x": 1})], "done"]), [locked], mode="async", executor=executor
    )
    result = agent.run_sync("go")
    executor.shutdown(wait=True)
    call = result.calls[0]
    assert call.error is not None and call.error.kind is ErrorKind.TOOL_ERROR
    assert "cannot send locked to a worker process" in call.error.message
    assert not call.ran


def test_unknown_executor_name() -> None:
    with pytest.raises(AsyncFCError, match="threads, processes, ray"):
        make_executor("gpu")


def test_threads_is_the_default_and_executor_is_the_interface() -> None:
    executor = make_executor()
    assert isinstance(executor, ThreadExecutor) and isinstance(executor, Executor)
    assert executor.kind == "threads" and make_executor(executor) is executor
    with pytest.raises(TypeError):
        Executor()  # type: ignore[abstract]


def test_an_executor_built_on_the_public_hooks_alone(tmp_path: Path) -> None:
    """``run_in_worker`` and ``release_workers`` are all an executor must provide: limits,
    async tools and closing come from the base class."""

    class InlineExecutor(Executor):
        kind = "threads"

        def __init__(self) -> None:
            super().__init__(tool_limits={"double": 1})
            self.released: list[bool] = []

        async def run_in_worker(self, tool: Tool, kwargs: Any, timeout: float | None, on_start: Any) -> Any:
            on_start(time.perf_counter())
            try:
                return tool.fn(**kwargs)
            except Exception as exc:
                raise ToolFailed(exc) from None

        def release_workers(self, wait: bool) -> None:
            self.released.append(wait)

    @tool(pure=True)
    async def triple(x: int) -> int:
        return x * 3

    executor = InlineExecutor()
    calls = [
        ScriptedCall("double", {"x": 2}),
        ScriptedCall("double", {"x": 3}),
        ScriptedCall("abort", {"x": 4}),
        ScriptedCall("triple", {"x": 5}),
    ]
    tools = [*_errors_tools(str(tmp_path)), triple]

    async def main() -> Any:
        async with executor:
            return await Agent(ScriptedModel([calls, "done"]), tools, mode="async", executor=executor).run(
                "go"
            )

    result = run(main())
    assert [c.value for c in result.calls] == [4, 6, None, 15]
    error = result.calls[2].error
    assert error is not None and error.kind is ErrorKind.TOOL_ERROR and "stop at 4" in error.message
    assert executor.peak_per_tool["double"] == 1 and executor.released == [False]


@pytest.mark.parametrize(
    ("kind", "module"), [("processes", "cloudpickle"), ("ray", "cloudpickle"), ("ray", "ray")]
)
def test_a_missing_extra_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch, kind: str, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    with pytest.raises(ExecutorUnavailable, match=re.escape(f"pip install 'asyncfc[{kind}]'")) as info:
        make_executor(kind)
    assert isinstance(info.value, AsyncFCError) and module in str(info.value)


def test_unreachable_ray_cluster_fails_fast() -> None:
    """The address is probed first: the error is ours, not a ``ray.init`` that retries for
    minutes (``timeout`` only keeps a regression from hanging the run)."""
    code = "from asyncfc.executors import make_executor; make_executor('ray', address='127.0.0.1:9', connect_timeout=1)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "ExecutorUnavailable: cannot reach the Ray cluster at 127.0.0.1:9" in proc.stderr


# -- resource hygiene (issue 8, item 7) --------------------------------------------------


def test_async_tool_swallowing_cancellation_still_times_out() -> None:
    """The call resolves to ``timeout`` while the tool, cancelled, still runs (it cannot end
    before the test lets it), and ``close`` waits for it."""
    cancelled = asyncio.Event()
    release = asyncio.Event()
    finished: list[int] = []

    @tool(pure=True, timeout=0.1)
    async def stubborn(x: int) -> int:
        try:
            await asyncio.Event().wait()  # never set: runs until its timeout cancels it
        except asyncio.CancelledError:
            cancelled.set()
            await release.wait()  # ignores the cancellation and carries on
        finished.append(x)
        return x

    async def main() -> tuple[Any, bool, bool]:
        executor = make_executor("threads")
        agent = Agent(
            ScriptedModel([[ScriptedCall("stubborn", {"x": 1})], "done"]),
            [stubborn],
            mode="async",
            executor=executor,
        )
        result = await agent.run("go")
        still_running = not finished
        release.set()
        await executor.close()  # waits for the stubborn task
        return result, still_running, cancelled.is_set()

    result, still_running, was_cancelled = run(main())
    call = result.calls[0]
    assert call.error is not None and call.error.kind is ErrorKind.TIMEOUT
    assert still_running, "the run waited for the tool that swallowed its cancellation"
    assert was_cancelled
    assert finished == [1], "close did not wait for the stubborn task"


def test_close_leaves_an_async_tool_that_never_accepts_its_cancellation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(executor_base, "STRAGGLER_WAIT_S", 0.2)
    release = asyncio.Event()

    @tool(pure=True, timeout=0.05)
    async def stubborn() -> int:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                pass  # swallowed, every time
        return 1

    async def main() -> tuple[Any, list[asyncio.Task[Any]], bool]:
        executor = make_executor("threads")
        agent = Agent(ScriptedModel([[ScriptedCall("stubborn")], "done"]), [stubborn], executor=executor)
        result = await agent.run("go")
        with pytest.warns(RuntimeWarning, match="'stubborn' ignored its cancellation"):
            await executor.close()  # returns though the task never ends on its own
        left = executor.abandoned_tasks
        running = all(not t.done() for t in left)
        release.set()  # let it end, so that this test's own event loop can close
        await asyncio.gather(*left)
        return result, left, running

    result, left, running = run(main())
    assert result.calls[0].error is not None and result.calls[0].error.kind is ErrorKind.TIMEOUT
    assert len(left) == 1 and running


def test_the_threads_executor_needs_no_extra() -> None:
    """cloudpickle comes with the processes and ray extras only: a plain install must import
    asyncfc and run tools without it (the shared result drain once imported it)."""
    script = (
        "import sys; sys.modules['cloudpickle'] = None\n"
        "import asyncio\n"
        "from asyncfc import Agent, tool\n"
        "from asyncfc.testing.scripted import ScriptedCall, ScriptedModel\n"
        "@tool(pure=True)\n"
        "def squares() -> object:\n"
        "    return (i * i for i in range(3))\n"
        "model = ScriptedModel([[ScriptedCall('squares')], 'done'])\n"
        "print(asyncio.run(Agent(model, [squares]).run('go')).calls[0].value)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 1, 4]"


def test_closed_executors_leave_no_threads() -> None:
    import threading

    @tool(pure=True)
    def double(x: int) -> int:
        return x * 2

    before = threading.active_count()

    async def main() -> None:
        for _ in range(10):
            async with make_executor("threads") as executor:
                agent = Agent(
                    ScriptedModel(
                        [[ScriptedCall("double", {"x": 1}), ScriptedCall("double", {"x": 2})], "done"]
                    ),
                    [double],
                    mode="async",
                    executor=executor,
                )
                await agent.run("go")
                assert executor.worker_threads >= 1

    run(main())
    assert threading.active_count() == before


EXIT_SCRIPT = """
import sys, threading
from asyncfc import Agent, tool
from asyncfc.executors import make_executor
from asyncfc.testing.scripted import ScriptedCall, ScriptedModel

@tool(pure=True, timeout=0.2)
def hang(x: int) -> int:
    threading.Event().wait()  # never returns
    return x

executor = make_executor(sys.argv[1])
agent = Agent(ScriptedModel([[ScriptedCall("hang", {"x": 1})], "done"]), [hang], mode="async", executor=executor)
result = agent.run_sync("go")
print(result.calls[0].error.kind.value)
if sys.argv[2] == "close":
    executor.shutdown()
"""


@pytest.mark.parametrize(
    ("kind", "close"), [("threads", "no-close"), ("threads", "close"), ("processes", "close")]
)
def test_process_exits_after_a_hung_sync_tool(kind: str, close: str, tmp_path: Path) -> None:
    """The tool never returns, so the process exits at all only if nothing waits for it
    (``timeout`` only keeps a regression from hanging the run)."""
    script = tmp_path / "hang.py"
    script.write_text(EXIT_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), kind, close], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "timeout"
