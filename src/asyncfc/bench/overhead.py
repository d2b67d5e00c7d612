"""Runtime overhead per call, with instant tools and an instant model.

Everything measured here is asyncfc's own cost: parsing, placeholder creation, reference
substitution, the hazard check, task dispatch and delivery. A burst model emits all calls
of a step without yielding to the event loop, so ``in_flight`` calls really are pending at
once when the step ends.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from ..agent import Agent
from ..models.base import (
    Message,
    ModelEvent,
    ModelRequest,
    ModelResponse,
    ResponseDone,
    ToolCall,
    ToolCallReady,
)
from ..scheduler import Mode, Scheduler
from ..tools import Tool, tool
from .stats import nearest_rank

DEFAULT_IN_FLIGHT = (10, 100, 1000, 10000)
DEFAULT_LABELS = (1, 10, 100, 1000)


class BurstModel:
    """Emits ``n`` calls in its first response, instantly; then answers in text."""

    name = "burst"

    def __init__(self, n: int, labels: int, refs: bool) -> None:
        self.n = n
        self.labels = labels
        self.refs = refs

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        if any(m.role == "tool" for m in request.messages):
            yield ResponseDone(ModelResponse(text="done"))
            return
        calls = []
        for i in range(self.n):
            # every 4th call takes an earlier call's future (async mode) as an argument
            x: Any = f"fut_{i - 2}" if self.refs and i % 4 == 3 else i
            calls.append(ToolCall(f"c{i}", "work", json.dumps({"key": f"k{i % self.labels}", "x": x})))
        for c in calls:
            yield ToolCallReady(c)
        yield ResponseDone(ModelResponse(tool_calls=calls, finish_reason="tool_calls"))


def _tools() -> list[Tool]:
    @tool(reads=["store/{key}"], writes=[])
    async def work(key: str, x: int) -> int:
        """An instant tool that reads one labelled key."""
        return x + 1

    @tool(reads=[], writes=["store/{key}"])
    async def put(key: str, x: int) -> int:
        """An instant tool that writes one labelled key."""
        return x

    return [work, put]


async def _one_run(mode: Mode, n: int, labels: int) -> tuple[float, list[float]]:
    agent = Agent(BurstModel(n, labels, refs=mode == "async"), _tools(), mode=mode, max_revisions=1)
    session = agent.session()
    submit_ns: list[float] = []
    sched: Scheduler = session.scheduler
    original = sched.submit

    def timed_submit(call_id: str, name: str, raw: str, *, user_turn: int = 0, step: int = 0) -> Any:
        t = time.perf_counter_ns()
        call = original(call_id, name, raw, user_turn=user_turn, step=step)
        submit_ns.append((time.perf_counter_ns() - t) / 1000)
        return call

    sched.submit = timed_submit  # type: ignore[method-assign,assignment]
    t0 = time.perf_counter()
    async with session:
        result = await session.run([Message("user", "go")])
    wall = time.perf_counter() - t0
    bad = [c for c in result.calls if c.error is not None]
    if bad:
        raise RuntimeError(f"overhead run had failing calls: {bad[0].error}")
    agent.executor.shutdown()
    return wall * 1e6 / n, submit_ns


async def measure(
    modes: Sequence[Mode] = ("sync", "parallel", "async"),
    in_flight: Sequence[int] = DEFAULT_IN_FLIGHT,
    labels: Sequence[int] = DEFAULT_LABELS,
    budget_calls: int = 30000,
) -> dict[str, Any]:
    """Per-call overhead (µs) by calls in flight and by distinct labels, per mode.

    ``median_us``/``p99_us`` are over repeated runs of the whole burst (wall time per
    call, everything included); ``submit_median_us``/``submit_p99_us`` are over single
    calls of the synchronous emission path (parse, references, hazard check, task).
    """
    out: dict[str, Any] = {"modes": {}}
    for mode in modes:
        per: dict[str, Any] = {}
        for n in in_flight:
            reps = max(3, min(30, budget_calls // n))
            walls: list[float] = []
            submits: list[float] = []
            for _ in range(reps):
                w, s = await _one_run(mode, n, labels=n)
                walls.append(w)
                submits.extend(s)
            per[str(n)] = {
                "median_us": round(statistics.median(walls), 2),
                "p99_us": round(nearest_rank(walls, 0.99), 2),
                "submit_median_us": round(statistics.median(submits), 2),
                "submit_p99_us": round(nearest_rank(submits, 0.99), 2),
                "runs": reps,
            }
        by_labels: dict[str, Any] = {}
        n = 1000
        for nl in labels:
            walls = [(await _one_run(mode, n, nl))[0] for _ in range(3)]
            by_labels[str(nl)] = {"median_us": round(statistics.median(walls), 2)}
        lo, hi = str(min(in_flight)), str(max(in_flight))
        out["modes"][mode] = {
            "in_flight": per,
            "labels_at_1000": by_labels,
            "growth": round(per[hi]["median_us"] / per[lo]["median_us"], 3) if per[lo]["median_us"] else None,
        }
    if (
        "100" in out["modes"].get("async", {}).get("in_flight", {})
        and "10000" in out["modes"]["async"]["in_flight"]
    ):
        a = out["modes"]["async"]["in_flight"]
        out["async_growth_100_to_10000"] = round(a["10000"]["median_us"] / a["100"]["median_us"], 3)
    return out


def run(**kwargs: Any) -> dict[str, Any]:
    return asyncio.run(measure(**kwargs))
