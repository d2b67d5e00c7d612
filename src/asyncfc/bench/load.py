"""Many concurrent sessions in one process, with optional fault injection.

Each session is a multi-turn scripted conversation: per user turn, one step fetches two
values (independent calls), the next step combines them (a call that depends on both)
and stores the result, then the model answers. One :class:`~asyncfc.Agent` (one executor)
serves every session, as in production. Counts are taken from two independent sides:
the tools count their own invocations, the runtime reports emitted, resolved and
delivered calls, so a lost or duplicated result cannot hide.
"""

from __future__ import annotations

import asyncio
import random
import resource
import statistics
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..agent import Agent, Session
from ..futures import AWAIT_TOOL
from ..models.base import (
    Message,
    ModelEvent,
    ModelRequest,
    ModelResponse,
    ResponseDone,
    ToolCallReady,
)
from ..models.scripted import Call, Ref, render_turn
from ..scheduler import Mode
from ..tools import Tool, tool
from .stats import nearest_rank

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
)
USER_TURNS = 2
CALLS_PER_TURN = 4


@dataclass
class Ledger:
    """What the tools themselves saw: invocations per call token."""

    runs: Counter[str] = field(default_factory=Counter)


def _fault_of(session: int, faults: bool, share: float, seed: int) -> str | None:
    if not faults:
        return None
    rng = random.Random(seed * 1_000_003 + session)
    return rng.choice(FAULTS) if rng.random() < share else None


class LoadModel:
    """A stateless scripted model: its answer depends only on the transcript."""

    name = "load-script"

    def __init__(self, faults: dict[int, str], decode_s: float) -> None:
        self.faults = faults
        self.decode_s = decode_s

    def _script(self, session: int, turn: int, step: int) -> str | list[Call]:
        base = turn * CALLS_PER_TURN
        fault = self.faults.get(session)
        tok = f"s{session}-u{turn}"
        if step == 0:
            first = "probe" if fault == "hang" else "fetch"  # probe has a short timeout and hangs
            return [
                Call(first, {"token": f"{tok}-a", "key": f"{session}:{turn}:a", "fault": fault or ""}),
                Call("fetch", {"token": f"{tok}-b", "key": f"{session}:{turn}:b", "fault": ""}),
            ]
        if step == 1:
            combine: dict[str, Any] = {"token": f"{tok}-c", "x": Ref(base), "y": Ref(base + 1)}
            if fault == "unknown_future":
                combine["y"] = "fut_999"
            elif fault == "foreign_future":
                combine["y"] = "fut_57.value"
            name = "no_such_tool" if fault == "unknown_tool" else "combine"
            return [Call(name, combine)]
        if step == 2:
            return [Call("store", {"token": f"{tok}-d", "slot": f"{session}", "value": Ref(base + 2)})]
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
        script = self._script(session, turn, min(step, 3))
        text, calls = render_turn(script, msgs, first_id=len(msgs))
        if self.faults.get(session) == "malformed" and step == 2:
            calls[0].arguments = '{"token": "broken", "slot": '
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


def load_tools(ledger: Ledger, delay_s: float) -> list[Tool]:
    @tool(reads=["data/{key}"], writes=[], timeout=10.0)
    async def fetch(token: str, key: str, fault: str = "") -> Any:
        """Fetch a value (slow)."""
        ledger.runs[token] += 1
        await asyncio.sleep(delay_s)
        if fault == "raise":
            raise ValueError(f"backend refused {key}")
        if fault == "huge":
            return "x" * 1_000_000
        if fault == "unserialisable":
            return _Opaque()
        return sum(map(ord, key)) % 997

    @tool(reads=["data/{key}"], writes=[], timeout=0.2)
    async def probe(token: str, key: str, fault: str = "") -> Any:
        """Fetch from a backend that hangs (for the hang fault): it always times out."""
        ledger.runs[token] += 1
        await asyncio.sleep(30)

    @tool(pure=True)
    async def combine(token: str, x: int, y: int) -> int:
        """Combine two values."""
        ledger.runs[token] += 1
        await asyncio.sleep(delay_s / 2)
        return x * 1000 + y

    @tool(reads=[], writes=["slots/{slot}"])
    def store(token: str, slot: str, value: int) -> str:
        """Store a value (a sync tool: runs in a worker thread)."""
        ledger.runs[token] += 1
        return f"stored {value} in {slot}"

    return [fetch, probe, combine, store]


def _expected_combine(session: int, turn: int) -> int:
    a = sum(map(ord, f"{session}:{turn}:a")) % 997
    b = sum(map(ord, f"{session}:{turn}:b")) % 997
    return a * 1000 + b


async def _one_session(agent: Agent, index: int, fault: str | None) -> tuple[Session, float, bool]:
    session = agent.session()
    t0 = time.perf_counter()
    cancelled = False
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
    await session.close()
    return session, time.perf_counter() - t0, cancelled


async def run_load(
    sessions: int,
    mode: Mode,
    *,
    faults: bool = False,
    fault_share: float = 0.3,
    seed: int = 0,
    delay_s: float = 0.02,
    decode_s: float = 0.002,
) -> dict[str, Any]:
    """Run ``sessions`` concurrent sessions in ``mode``; count every call from both sides."""
    threads_before = threading.active_count()
    tasks_before = len(asyncio.all_tasks())
    ledger = Ledger()
    fault_map = {i: f for i in range(sessions) if (f := _fault_of(i, faults, fault_share, seed))}
    agent = Agent(
        LoadModel(fault_map, decode_s),
        load_tools(ledger, delay_s),
        mode=mode,
        max_result_chars=2000,
        max_steps=8,
        max_concurrency=2000,
    )
    t0 = time.perf_counter()
    outcomes = await asyncio.gather(*(_one_session(agent, i, fault_map.get(i)) for i in range(sessions)))
    wall = time.perf_counter() - t0
    agent.executor.shutdown(wait=True)  # no tool hangs in a worker thread here, so this returns
    for _ in range(200):  # cancelled timers and tasks finish within a few loop turns
        if len(asyncio.all_tasks()) <= tasks_before:
            break
        await asyncio.sleep(0.01)
    emitted = run = rejected = resolved = delivered = duplicated = lost = 0
    wrong_results = 0
    completed_lat: list[float] = []
    errors: Counter[str] = Counter()
    for index, (session, latency, cancelled) in enumerate(outcomes):
        for call in session.calls:
            emitted += 1
            token = (call.arguments or {}).get("token") if isinstance(call.arguments, dict) else None
            tool_runs = ledger.runs.get(token, 0) if token else 0
            run += 1 if call.ran else 0
            rejected += 0 if call.ran else 1
            duplicated += max(0, tool_runs - 1) + max(0, call.deliveries - 1)
            resolved += 1 if call.done else 0
            delivered += 1 if call.delivered_at is not None else 0
            if not call.done or (call.delivered_at is None and not cancelled):
                lost += 1
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
    invoked = sum(ledger.runs.values())
    lat = sorted(completed_lat)
    return {
        "mode": mode,
        "sessions": sessions,
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
        "lost": lost + max(0, run - invoked),
        "duplicated": duplicated,
        "wrong_results_in_clean_sessions": wrong_results,
        "errors_by_type": dict(sorted(errors.items())),
        "calls_per_s": round(emitted / wall, 1),
        "wall_s": round(wall, 3),
        "p50_session_s": round(statistics.median(lat), 4) if lat else None,
        "p99_session_s": round(nearest_rank(lat, 0.99), 4) if lat else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "leaked_tasks": len(asyncio.all_tasks()) - tasks_before,
        "leaked_threads": threading.active_count() - threads_before,
    }


def _child(sessions: int, mode: Mode, faults: bool, seed: int) -> dict[str, Any]:
    return asyncio.run(run_load(sessions, mode, faults=faults, seed=seed))


def compare(
    sessions: int, modes: Sequence[Mode], *, faults: bool, seed: int = 0, isolate: bool = True
) -> dict[str, Any]:
    """Each mode in a fresh process (so peak memory is its own), side by side."""
    out: dict[str, Any] = {"sessions": sessions, "faults": faults, "modes": {}}
    if isolate:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        for mode in modes:
            with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
                out["modes"][mode] = pool.submit(_child, sessions, mode, faults, seed).result()
    else:
        for mode in modes:
            out["modes"][mode] = _child(sessions, mode, faults, seed)
    return out
