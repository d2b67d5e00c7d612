"""Many concurrent sessions in one process, with optional fault injection.

Each session is a multi-turn scripted conversation: per user turn, one step fetches two
values (independent calls), the next step combines them (a call that depends on both)
and stores the result, then the model answers. One :class:`~asyncfc.Agent` (one executor)
serves every session, as in production. Counts are taken from two independent sides:
the tools count their own invocations, the runtime reports emitted, resolved and
delivered calls, so a lost or duplicated result cannot hide.

The tools count their invocations in a file (``Ledger``), so counts hold whichever
executor runs them (threads, worker processes, Ray tasks). With ``workers > 0`` (Ray),
sessions are spread over that many Ray actors, each an event loop holding its share.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import resource
import signal
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from asyncfc.agent import Agent, Session
from asyncfc.executors import ExecutorKind, make_executor
from asyncfc.futures import future_id
from asyncfc.mode import ModeName
from asyncfc.model_text import AWAIT_TOOL
from asyncfc.models.base import (
    Message,
    ModelEvent,
    ModelRequest,
    ModelResponse,
    ResponseDone,
    ToolCallReady,
)
from asyncfc.testing.scripted import Ref, ScriptedCall, render_turn
from asyncfc.tools import Tool, tool
from asyncfc_bench.stats import nearest_rank

__all__ = [
    "CALLS_PER_TURN",
    "COUNTS",
    "DEEP_LEVELS",
    "FAULTS",
    "Ledger",
    "LoadAbort",
    "LoadModel",
    "LoadWorker",
    "SYNC_FAULTS",
    "USER_TURNS",
    "compare",
    "leaked_worker_processes",
    "load_tools",
    "run_load",
    "run_on_actors",
]

FAULTS = (
    "raise",
    "hang",
    "huge",
    "unserialisable",
    "cancel",
    "malformed",
    "unknown_tool",
    "unknown_future",
    "foreign_future",
    "base_exception",
    "deep_args",
    "nan",
    "non_utf8",
    "circular",
    "await_twice",
    "hang_sync",
    "kill_worker",
)
SYNC_FAULTS = ("base_exception", "hang_sync", "kill_worker")
"""Faults injected through ``lookup``, a sync tool (it runs wherever the executor runs sync tools)."""
DEEP_LEVELS = 5000
USER_TURNS = 2
CALLS_PER_TURN = 4


@dataclass
class Ledger:
    """What the tools themselves saw, in a file every process can append to (one line per event)."""

    path: str

    def record(self, event: str, token: str) -> None:
        with open(self.path, "a") as f:  # one short write: atomic with O_APPEND
            f.write(f"{event} {token} {os.getpid()}\n")

    def events(self) -> list[tuple[str, str, int]]:
        try:
            with open(self.path) as f:
                rows = [line.split() for line in f]
        except FileNotFoundError:
            return []
        return [(r[0], r[1], int(r[2])) for r in rows if len(r) == 3]

    @property
    def runs(self) -> Counter[str]:
        return Counter(tok for ev, tok, _ in self.events() if ev == "run")


class LoadAbort(BaseException):
    """A tool's own ``BaseException`` subclass (not an ``Exception``)."""


def _fault_of(session: int, faults: bool, share: float, seed: int, executor: str, mode: str) -> str | None:
    if not faults:
        return None
    rng = random.Random(seed * 1_000_003 + session)
    fault = rng.choice(FAULTS) if rng.random() < share else None
    if fault == "kill_worker" and executor == "threads":
        return None  # a thread cannot be killed without killing the benchmark itself
    if fault == "await_twice" and mode != "async":
        return None  # await_future exists in async mode only
    return fault


class LoadModel:
    """A stateless scripted model: its answer depends only on the transcript."""

    name = "load-script"

    def __init__(self, faults: dict[int, str], decode_s: float) -> None:
        self.faults = faults
        self.decode_s = decode_s

    def _script(self, session: int, turn: int, step: int) -> str | list[ScriptedCall]:
        base = turn * CALLS_PER_TURN
        fault = self.faults.get(session)
        tok = f"s{session}-u{turn}"
        if step == 0:
            first = "probe" if fault == "hang" else "lookup" if fault in SYNC_FAULTS else "fetch"
            return [
                ScriptedCall(
                    first, {"token": f"{tok}-a", "key": f"{session}:{turn}:a", "fault": fault or ""}
                ),
                ScriptedCall("fetch", {"token": f"{tok}-b", "key": f"{session}:{turn}:b", "fault": ""}),
            ]
        if step == 1:
            combine: dict[str, Any] = {"token": f"{tok}-c", "x": Ref(base + 1), "y": Ref(base + 2)}
            if fault == "unknown_future":
                combine["y"] = "fut_999"
            elif fault == "foreign_future":
                combine["y"] = "fut_57.value"
            name = "no_such_tool" if fault == "unknown_tool" else "combine"
            return [ScriptedCall(name, combine)]
        if step == 2:
            return [
                ScriptedCall("store", {"token": f"{tok}-d", "slot": f"{session}", "value": Ref(base + 3)})
            ]
        return f"turn {turn} done"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        msgs = request.messages
        users = [i for i, m in enumerate(msgs) if m.role == "user"]
        session = int(msgs[users[0]].content.split()[1])
        turn = len(users) - 1
        step = sum(
            1
            for m in msgs[users[-1] :]
            if m.role == "assistant" and any(c.name != AWAIT_TOOL for c in m.tool_calls)
        )
        fault = self.faults.get(session)
        awaits = sum(
            1
            for m in msgs[users[-1] :]
            if m.role == "assistant" and m.tool_calls and all(c.name == AWAIT_TOOL for c in m.tool_calls)
        )
        script: str | list[ScriptedCall]
        if fault == "await_twice" and step == 1 and awaits < 2:  # the same future, awaited twice
            script = [ScriptedCall(AWAIT_TOOL, {"ids": [future_id(turn * CALLS_PER_TURN + 1)]})]
        else:
            script = self._script(session, turn, min(step, 3))
        text, calls = render_turn(script, msgs, first_id=len(msgs))
        if fault == "malformed" and step == 2:
            calls[0].arguments = '{"token": "broken", "slot": '
        if fault == "deep_args" and step == 2:
            deep = "[" * DEEP_LEVELS + "]" * DEEP_LEVELS
            calls[0].arguments = f'{{"token": "s{session}-u{turn}-deep", "slot": {deep}, "value": 1}}'
        for c in calls:
            await asyncio.sleep(self.decode_s)
            yield ToolCallReady(c)
        if text:
            await asyncio.sleep(self.decode_s)
        yield ResponseDone(ModelResponse(text=text, tool_calls=calls))


class _Opaque:
    """A result that JSON cannot encode."""

    def __repr__(self) -> str:
        return "<opaque result>"


def _circular() -> list[Any]:
    out: list[Any] = []
    out.append(out)
    return out


def load_tools(ledger: Ledger, delay_s: float) -> list[Tool]:
    @tool(reads=["data/{key}"], writes=[], timeout=10.0)
    async def fetch(token: str, key: str, fault: str = "") -> Any:
        """Fetch a value (slow)."""
        ledger.record("run", token)
        await asyncio.sleep(delay_s)
        if fault == "raise":
            raise ValueError(f"backend refused {key}")
        if fault == "huge":
            return "x" * 1_000_000
        if fault == "unserialisable":
            return _Opaque()
        if fault == "nan":
            return math.nan
        if fault == "non_utf8":
            return b"\xff\xfe\x00 not utf-8"
        if fault == "circular":
            return _circular()
        return sum(map(ord, key)) % 997

    @tool(reads=["data/{key}"], writes=[], timeout=0.2)
    async def probe(token: str, key: str, fault: str = "") -> Any:
        """Fetch from a backend that hangs (for the hang fault): it always times out."""
        ledger.record("run", token)
        await asyncio.sleep(30)

    @tool(reads=["data/{key}"], writes=[], timeout=0.3)
    def lookup(token: str, key: str, fault: str = "") -> Any:
        """A sync fetch (runs where the executor runs sync tools) for the sync faults."""
        ledger.record("run", token)
        if fault == "base_exception":
            raise LoadAbort(f"aborted {key}")
        if fault == "kill_worker":
            ledger.record("kill", token)
            os.kill(os.getpid(), signal.SIGKILL)
        if fault == "hang_sync":
            time.sleep(1.0)
            ledger.record("late", token)  # a side effect after the timeout: only threads get here
        return sum(map(ord, key)) % 997

    @tool(pure=True)
    async def combine(token: str, x: int, y: int) -> int:
        """Combine two values."""
        ledger.record("run", token)
        await asyncio.sleep(delay_s / 2)
        return x * 1000 + y

    @tool(reads=[], writes=["slots/{slot}"])
    def store(token: str, slot: str, value: int) -> str:
        """Store a value (a sync tool: runs where the executor runs sync tools)."""
        ledger.record("run", token)
        return f"stored {value} in {slot}"

    return [fetch, probe, lookup, combine, store]


def _expected_combine(session: int, turn: int) -> int:
    a = sum(map(ord, f"{session}:{turn}:a")) % 997
    b = sum(map(ord, f"{session}:{turn}:b")) % 997
    return a * 1000 + b


async def _one_session(
    agent: Agent, index: int, fault: str | None, errors: Counter[str]
) -> tuple[Session, float, bool]:
    """One session; an exception out of ``run`` (a runtime bug) is counted, not fatal."""
    session = agent.session()
    t0 = time.perf_counter()
    cancelled = False
    try:
        for turn in range(USER_TURNS):
            prompt = [Message("user", f"session {index} turn {turn}")]
            if fault == "cancel" and turn == 1:
                try:
                    await asyncio.wait_for(session.run(prompt), timeout=0.01)
                except asyncio.TimeoutError:
                    cancelled = True
                    break
            else:
                await session.run(prompt)
    except Exception as exc:  # noqa: BLE001 - reported as session_errors
        errors[f"{fault}:{type(exc).__name__}"] += 1
    await session.close()
    return session, time.perf_counter() - t0, cancelled


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True


def leaked_worker_processes(ledger: Ledger) -> int:
    """Tool worker processes (pids the tools saw, other than ours) still alive."""
    pids = {pid for _, _, pid in ledger.events() if pid != os.getpid()}
    return sum(1 for pid in pids if _alive(pid))


async def run_load(
    sessions: int,
    mode: ModeName,
    *,
    faults: bool = False,
    fault_share: float = 0.3,
    seed: int = 0,
    delay_s: float = 0.02,
    decode_s: float = 0.002,
    executor: ExecutorKind = "threads",
    indices: Sequence[int] | None = None,
    ledger_path: str | None = None,
    keep_latencies: bool = False,
) -> dict[str, Any]:
    """Run ``sessions`` concurrent sessions in ``mode``; count every call from both sides.

    ``indices`` runs only those sessions of the ``sessions`` (a Ray actor's share; faults
    depend on the session index, so a split run injects the same faults)."""
    threads_before = threading.active_count()
    tasks_before = len(asyncio.all_tasks())
    own_dir = None
    if ledger_path is None:
        own_dir = tempfile.mkdtemp(prefix="asyncfc-load-")
        ledger_path = os.path.join(own_dir, "ledger")
    ledger = Ledger(ledger_path)
    chosen = list(range(sessions)) if indices is None else list(indices)
    fault_map = {i: f for i in chosen if (f := _fault_of(i, faults, fault_share, seed, executor, mode))}
    agent = Agent(
        LoadModel(fault_map, decode_s),
        load_tools(ledger, delay_s),
        mode=mode,
        max_result_chars=2000,
        max_steps=8,
        grace_s=0.0,  # tools take milliseconds here: a window sized for real tools would hide the futures path
        executor=make_executor(executor, max_concurrency=2000),
    )
    session_errors: Counter[str] = Counter()
    t0 = time.perf_counter()
    outcomes = await asyncio.gather(
        *(_one_session(agent, i, fault_map.get(i), session_errors) for i in chosen)
    )
    wall = time.perf_counter() - t0
    t_close = time.perf_counter()
    await agent.executor.close()
    agent.executor.shutdown(wait=True)  # joins the threads of timed-out sync tools (1 s at most here)
    close_s = time.perf_counter() - t_close
    for _ in range(200):  # cancelled timers and tasks finish within a few loop turns
        if len(asyncio.all_tasks()) <= tasks_before:
            break
        await asyncio.sleep(0.01)
    events = ledger.events()
    runs = Counter(tok for ev, tok, _ in events if ev == "run")
    emitted = run = rejected = resolved = delivered = duplicated = lost = 0
    wrong_results = 0
    completed_lat: list[float] = []
    errors: Counter[str] = Counter()
    bad_delivery_counts = 0
    for index, (session, latency, cancelled) in zip(chosen, outcomes, strict=True):
        for call in session.calls:
            emitted += 1
            token = (call.arguments or {}).get("token") if isinstance(call.arguments, dict) else None
            tool_runs = runs.get(token, 0) if token else 0
            run += 1 if call.ran else 0
            rejected += 0 if call.ran else 1
            duplicated += max(0, tool_runs - 1) + max(0, call.deliveries - 1)
            resolved += 1 if call.done else 0
            delivered += 1 if call.delivered_at is not None else 0
            if not call.done or (call.delivered_at is None and not cancelled):
                lost += 1
            elif (
                call.ran and tool_runs == 0 and (call.error is None or call.error.kind.value == "tool_error")
            ):
                lost += 1  # a result without a run (a call that timed out or was cancelled
                # while queued on a cluster is reported started but never ran: not lost)
            if not cancelled and call.deliveries != 1:
                bad_delivery_counts += 1  # one resolution, delivered once, counted once
            if call.error is not None:
                errors[call.error.kind.value] += 1
            if (
                call.name == "combine"
                and index not in fault_map
                and call.value != _expected_combine(index, call.user_turn - 1)
            ):
                wrong_results += 1
        if not cancelled:
            completed_lat.append(latency)
    invoked = sum(runs.values())
    lat = sorted(completed_lat)
    out: dict[str, Any] = {
        "mode": mode,
        "executor": executor,
        "sessions": len(chosen),
        "faulted_sessions": len(fault_map),
        "cancelled_sessions": sum(1 for o in outcomes if o[2]),
        "emitted": emitted,
        "run": run,
        "tool_invocations": invoked,
        "rejected": rejected,
        "resolved": resolved,
        "delivered": delivered,
        "undelivered_in_cancelled_sessions": sum(
            1 for s, _, c in outcomes if c for call in s.calls if call.delivered_at is None
        ),
        "lost": lost,
        "started_not_invoked": max(0, run - invoked),
        "duplicated": duplicated,
        "wrong_results_in_clean_sessions": wrong_results,
        "delivery_count_not_one": bad_delivery_counts,
        "session_errors": dict(sorted(session_errors.items())),
        "killed_workers": sum(1 for ev, _, _ in events if ev == "kill"),
        "late_side_effects": sum(1 for ev, _, _ in events if ev == "late"),
        "errors_by_type": dict(sorted(errors.items())),
        "calls_per_s": round(emitted / wall, 1),
        "wall_s": round(wall, 3),
        "p50_session_s": round(statistics.median(lat), 4) if lat else None,
        "p99_session_s": round(nearest_rank(lat, 0.99), 4) if lat else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "leaked_tasks": len(asyncio.all_tasks()) - tasks_before,
        "leaked_threads": threading.active_count() - threads_before,
        "leaked_processes": leaked_worker_processes(ledger) if executor != "ray" else None,
        "close_s": round(close_s, 3),
    }
    if keep_latencies:
        out["_latencies"] = completed_lat
    if own_dir is not None:
        with contextlib.suppress(OSError):
            os.remove(ledger_path)
            os.rmdir(own_dir)
    return out


COUNTS = (
    "emitted",
    "run",
    "tool_invocations",
    "rejected",
    "resolved",
    "delivered",
    "lost",
    "duplicated",
    "wrong_results_in_clean_sessions",
    "delivery_count_not_one",
    "killed_workers",
    "late_side_effects",
    "faulted_sessions",
    "cancelled_sessions",
    "leaked_tasks",
    "leaked_threads",
)


class LoadWorker:
    """A Ray actor (an event loop) holding a share of the sessions."""

    def ready(self) -> int:
        return os.getpid()

    async def run(
        self, sessions: int, mode: ModeName, faults: bool, seed: int, share: list[int], ledger: str
    ) -> Any:
        return await run_load(
            sessions,
            mode,
            faults=faults,
            seed=seed,
            executor="ray",
            indices=share,
            ledger_path=ledger,
            keep_latencies=True,
        )


async def run_on_actors(
    sessions: int, mode: ModeName, faults: bool, seed: int, workers: int, ledger_dir: str
) -> dict[str, Any]:
    """Spread the sessions over ``workers`` Ray actors; per worker and total counts."""
    import ray

    actor_cls: Any = ray.remote(num_cpus=1, max_restarts=0)(LoadWorker)
    actors: list[Any] = [actor_cls.remote() for _ in range(workers)]
    await asyncio.gather(*(asyncio.wrap_future(a.ready.remote().future()) for a in actors))
    t0 = time.perf_counter()
    parts: list[dict[str, Any]] = await asyncio.gather(
        *(
            asyncio.wrap_future(
                a.run.remote(
                    sessions,
                    mode,
                    faults,
                    seed,
                    list(range(w, sessions, workers)),
                    os.path.join(ledger_dir, f"ledger-{w}"),
                ).future()
            )
            for w, a in enumerate(actors)
        )
    )
    wall = time.perf_counter() - t0
    for a in actors:
        ray.kill(a)
    lat = sorted(x for p in parts for x in p.pop("_latencies"))
    total: dict[str, Any] = {k: sum(p[k] for p in parts) for k in COUNTS}
    errors: Counter[str] = Counter()
    session_errors: Counter[str] = Counter()
    for p in parts:
        errors.update(p["errors_by_type"])
        session_errors.update(p["session_errors"])
    total.update(
        mode=mode,
        executor="ray",
        sessions=sessions,
        workers=workers,
        errors_by_type=dict(sorted(errors.items())),
        session_errors=dict(sorted(session_errors.items())),
        calls_per_s=round(total["emitted"] / wall, 1),
        wall_s=round(wall, 3),
        p50_session_s=round(statistics.median(lat), 4) if lat else None,
        p99_session_s=round(nearest_rank(lat, 0.99), 4) if lat else None,
        peak_rss_mb=max(p["peak_rss_mb"] for p in parts),
        per_worker=parts,
    )
    return total


def _child(
    sessions: int,
    mode: ModeName,
    faults: bool,
    seed: int,
    executor: ExecutorKind = "threads",
    workers: int = 0,
) -> dict[str, Any]:
    """One mode, in its own process; with Ray, on a local cluster started here (127.0.0.1)."""
    if executor != "ray":
        return asyncio.run(run_load(sessions, mode, faults=faults, seed=seed, executor=executor))
    import ray

    os.dup2(2, 1)  # Ray's own messages go to stdout: keep it for our JSON (this is the child)
    started = not ray.is_initialized() and not os.environ.get("RAY_ADDRESS")
    if started:
        ray.init(
            _node_ip_address="127.0.0.1",
            num_cpus=(os.cpu_count() or 2) + max(workers, 1),
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    ledger_dir = tempfile.mkdtemp(prefix="asyncfc-load-")
    try:
        if workers <= 0:
            path = os.path.join(ledger_dir, "ledger")
            out = asyncio.run(
                run_load(sessions, mode, faults=faults, seed=seed, executor="ray", ledger_path=path)
            )
        else:
            out = asyncio.run(run_on_actors(sessions, mode, faults, seed, workers, ledger_dir))
            if workers > 1:  # the same sessions on one actor, in the same run
                one_dir = tempfile.mkdtemp(prefix="asyncfc-load-", dir=ledger_dir)
                one = asyncio.run(run_on_actors(sessions, mode, faults, seed, 1, one_dir))
                out["one_worker_calls_per_s"] = one["calls_per_s"]
                out["speedup_vs_one_worker"] = round(out["calls_per_s"] / one["calls_per_s"], 3)
    finally:
        if started:
            ray.shutdown()
    ledgers = [os.path.join(d, f) for d, _, fs in os.walk(ledger_dir) for f in fs]
    out["leaked_processes"] = sum(leaked_worker_processes(Ledger(p)) for p in ledgers) if started else None
    for p in ledgers:
        os.remove(p)
    return out


def compare(
    sessions: int,
    modes: Sequence[ModeName],
    *,
    faults: bool,
    seed: int = 0,
    isolate: bool = True,
    executor: ExecutorKind = "threads",
    workers: int = 0,
) -> dict[str, Any]:
    """Each mode in a fresh process (so peak memory is its own), side by side.

    ``exit_s`` is how long that process took to exit after handing back its result."""
    out: dict[str, Any] = {
        "sessions": sessions,
        "faults": faults,
        "executor": executor,
        "workers": workers,
        "modes": {},
    }
    if isolate:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        for mode in modes:
            with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
                out["modes"][mode] = pool.submit(
                    _child, sessions, mode, faults, seed, executor, workers
                ).result()
                t0 = time.perf_counter()
            out["modes"][mode]["exit_s"] = round(time.perf_counter() - t0, 3)
    else:
        for mode in modes:
            out["modes"][mode] = _child(sessions, mode, faults, seed, executor, workers)
    return out
