"""Runtime overhead per call, with instant tools and an instant model.

Everything measured here is asyncfc's own cost: parsing, placeholder creation, reference
substitution, the hazard check, task dispatch and delivery. A burst model emits all calls
of a step without yielding to the event loop, so ``in_flight`` calls really are pending at
once when the step ends.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, cast

from asyncfc.agent import Agent
from asyncfc.mode import ModeName
from asyncfc.model_text import AWAIT_TOOL
from asyncfc.models.base import (
    Message,
    ModelEvent,
    ModelRequest,
    ModelResponse,
    ResponseDone,
    ToolCall,
    ToolCallReady,
)
from asyncfc.scheduler import Scheduler
from asyncfc.tools import Tool, tool
from asyncfc_bench.stats import nearest_rank

__all__ = [
    "BARE",
    "BurstModel",
    "DEFAULT_IN_FLIGHT",
    "DEFAULT_LABELS",
    "SERVER_SYSTEMS",
    "SERVER_WORKLOADS",
    "measure",
    "measure_server",
    "run",
    "serve_instant",
]

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


async def _one_run(mode: ModeName, n: int, labels: int) -> tuple[float, list[float]]:
    agent = Agent(BurstModel(n, labels, refs=mode == "async"), _tools(), mode=mode, max_revisions=1)
    session = agent.session()
    submit_ns: list[float] = []
    sched: Scheduler = session.scheduler
    original = sched.submit

    def timed_submit(tool_call_id: str, name: str, raw: str, *, user_turn: int = 0, step: int = 0) -> Any:
        t = time.perf_counter_ns()
        call = original(tool_call_id, name, raw, user_turn=user_turn, step=step)
        submit_ns.append((time.perf_counter_ns() - t) / 1000)
        return call

    sched.submit = timed_submit  # type: ignore[method-assign,assignment]
    gc.collect()  # the previous run's garbage is not this run's cost (as in the server benchmark)
    t0 = time.perf_counter()
    async with session:
        result = await session.run([Message("user", "go")])
    wall = time.perf_counter() - t0
    del sched.submit  # the wrapper refers to the scheduler: drop the cycle, so the session dies by refcount
    bad = [c for c in result.calls if c.error is not None]
    if bad:
        raise RuntimeError(f"overhead run had failing calls: {bad[0].error}")
    agent.executor.shutdown()
    return wall * 1e6 / n, submit_ns


async def measure(
    modes: Sequence[ModeName] = ("sync", "parallel", "async"),
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


# -- through a real server: client CPU per call against a bare SDK loop -------------------

SERVER_WORKLOADS: dict[str, tuple[int, int, int]] = {"1x200": (1, 200, 4), "200x4": (200, 4, 4)}
"""Workload name -> (concurrent sessions, calls per session, calls per model response)."""

SERVER_SYSTEMS = ("sync", "parallel", "async", "sync-nostream", "parallel-nostream", "async-nostream")
"""asyncfc's modes; ``-nostream`` asks the model not to stream (no early dispatch)."""

BARE = ("bare", "bare_stream")
"""The baselines: ``chat.completions.create`` + ``asyncio.gather`` on the same client,
responses whole (``bare``) or streamed and accumulated chunk by chunk (``bare_stream``)."""


def _next_turn(transcript: Sequence[Message], calls: int, per_response: int) -> tuple[str, list[ToolCall]]:
    """The instant server's answer to one session's request: its next calls, or the final text."""
    made = sum(1 for m in transcript for c in m.tool_calls if c.name != AWAIT_TOOL)
    if made >= calls:
        return "done", []
    now = range(made, min(calls, made + per_response))
    return "", [ToolCall(f"call_{i}", "work", json.dumps({"key": f"k{i}", "x": i})) for i in now]


def serve_instant(calls: int, per_response: int = 1) -> None:
    """The server process: an instant simulated server; prints its base URL, serves until stdin closes."""
    from asyncfc.testing.simserver import SimServer  # the SDKs stay out of the in-process benchmark's heap

    server = SimServer([])
    server.script.next_turn = lambda transcript: _next_turn(transcript, calls, per_response)  # type: ignore[method-assign]
    with server:
        print(server.base_url, flush=True)
        sys.stdin.read()


class _Server:
    """:func:`serve_instant` in a child process, so this process's CPU time is the client's alone."""

    def __init__(self, calls: int, per_response: int) -> None:
        code = f"from asyncfc_bench.overhead import serve_instant; serve_instant({int(calls)}, {int(per_response)})"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url:
            self.close()
            raise RuntimeError("the instant server did not start")

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


async def _work(key: str, x: int) -> int:
    return x + 1


_WORK_SPEC = {
    "type": "function",
    "function": {
        "name": "work",
        "description": "An instant tool that reads one labelled key.",
        "parameters": {
            "type": "object",
            "properties": {"key": {"type": "string"}, "x": {"type": "integer"}},
            "required": ["key", "x"],
        },
    },
}


async def _bare_session(client: Any, stream: bool) -> int:
    """The bare loop: one conversation through the SDK, tools of a response run with gather."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
    calls = 0
    while True:
        kw: dict[str, Any] = {"model": "instant", "messages": messages, "tools": [_WORK_SPEC]}
        if stream:
            text, made = "", cast(dict[int, dict[str, Any]], {})
            async for chunk in await client.chat.completions.create(**kw, stream=True):
                for d in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
                    slot = made.setdefault(d.index, {"id": d.id, "name": d.function.name, "args": ""})
                    slot["args"] += d.function.arguments or ""
                text += chunk.choices[0].delta.content or "" if chunk.choices else ""
            tcs = [(s["id"], s["name"], s["args"]) for s in made.values()]
        else:
            msg = (await client.chat.completions.create(**kw)).choices[0].message
            text = msg.content or ""
            tcs = [(t.id, t.function.name, t.function.arguments) for t in msg.tool_calls or []]
        if not tcs:
            return calls
        fns = [{"id": i, "type": "function", "function": {"name": n, "arguments": a}} for i, n, a in tcs]
        messages.append({"role": "assistant", "content": text or None, "tool_calls": fns})
        values = await asyncio.gather(*(_work(**json.loads(a)) for _, _, a in tcs))
        messages += [
            {"role": "tool", "tool_call_id": i, "content": json.dumps(v)}
            for (i, _, _), v in zip(tcs, values, strict=True)
        ]
        calls += len(tcs)


async def _server_run(system: str, client: Any, sessions: int, calls: int) -> tuple[float, float]:
    """One run of a workload: (client CPU seconds, wall seconds)."""
    if system in BARE:
        runs: Any = [_bare_session(client, system == "bare_stream") for _ in range(sessions)]
        agent = None
    else:
        from asyncfc.models.openai_chat import OpenAIChatModel

        mode = cast(ModeName, system.split("-")[0])
        stream = not system.endswith("-nostream")
        model = OpenAIChatModel("instant", client=client, stream=stream)
        agent = Agent(model, _tools(), mode=mode, stream=stream, max_steps=calls + 2, max_revisions=1)
        runs = [agent.run("go") for _ in range(sessions)]
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    results = await asyncio.gather(*runs)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    for r in results:
        made = r if isinstance(r, int) else len(r.calls)
        bad = [] if isinstance(r, int) else [c.error for c in r.calls if c.error is not None]
        if made != calls or bad:
            raise RuntimeError(f"{system}: a session made {made} calls (expected {calls}), errors {bad[:1]}")
    if agent is not None:
        await agent.close()
    return cpu, wall


async def measure_server(
    workloads: Mapping[str, tuple[int, int, int]] = SERVER_WORKLOADS,
    systems: Sequence[str] = SERVER_SYSTEMS,
    repeats: int = 3,
) -> dict[str, Any]:
    """Client CPU per call of asyncfc's modes and of the bare loop, against an instant server
    in another process. Rounds are interleaved (each round runs every system once); figures
    are medians over rounds, after one unmeasured warm-up round."""
    from openai import AsyncOpenAI

    out: dict[str, Any] = {
        "repeats": repeats,
        "server": "simserver, instant, separate process",
        "workloads": {},
    }
    for wname, (sessions, calls, per_response) in workloads.items():
        server = _Server(calls, per_response)
        client = AsyncOpenAI(base_url=server.base_url, api_key="sk-no-key", max_retries=0)
        names = [*systems, *BARE]
        cpu: dict[str, list[float]] = {s: [] for s in names}
        wall: dict[str, list[float]] = {s: [] for s in names}
        try:
            for r in range(repeats + 1):
                for i in range(len(names)):
                    s = names[(i + r) % len(names)]  # rotate, so no system always runs first
                    c, w = await _server_run(s, client, sessions, calls)
                    if r:
                        cpu[s].append(c * 1e6 / (sessions * calls))
                        wall[s].append(w)
        finally:
            await client.close()
            server.close()

        def row(
            s: str, cpu: dict[str, list[float]] = cpu, wall: dict[str, list[float]] = wall
        ) -> dict[str, Any]:
            return {
                "cpu_us_per_call": round(statistics.median(cpu[s]), 1),
                "cpu_us_per_call_runs": [round(x, 1) for x in cpu[s]],
                "wall_s": round(statistics.median(wall[s]), 4),
            }

        bare = statistics.median(cpu["bare"])
        modes = {s: row(s) for s in systems}
        for m in modes.values():
            m["extra_us_vs_bare"] = round(m["cpu_us_per_call"] - bare, 1)
            m["ratio_vs_bare"] = round(m["cpu_us_per_call"] / bare, 3)
        ratios = {f"{s}_vs_bare": m["ratio_vs_bare"] for s, m in modes.items()}
        if "async" in modes and "sync" in modes:
            ratios["async_vs_sync"] = round(
                modes["async"]["cpu_us_per_call"] / modes["sync"]["cpu_us_per_call"], 3
            )
        if "async" in modes and "async-nostream" in modes:
            ratios["stream_vs_nostream_async"] = round(
                modes["async"]["cpu_us_per_call"] / modes["async-nostream"]["cpu_us_per_call"], 3
            )
        out["workloads"][wname] = {
            "sessions": sessions,
            "calls_per_session": calls,
            "calls_per_response": per_response,
            "modes": modes,
            "baseline": {b: row(b) for b in BARE},
            "ratios": ratios,
        }
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return out
