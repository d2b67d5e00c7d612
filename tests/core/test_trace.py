"""Traces: spans of model steps and calls, exported as Chrome trace JSON."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from asyncfc import tool
from asyncfc.agent import Agent, RunResult
from asyncfc.model_text import AWAIT_TOOL
from asyncfc.testing.scripted import ScriptedCall, ScriptedModel
from asyncfc.trace import Trace, plot_timeline
from conftest import run


def traced_run() -> RunResult:
    @tool(pure=True)
    async def fetch(x: int) -> int:
        await asyncio.sleep(0.005)
        return x

    @tool(pure=True)
    def compute(x: int) -> int:
        return x + 1

    model = ScriptedModel(
        [
            [ScriptedCall("fetch", {"x": 1}), ScriptedCall("compute", {"x": 2})],
            [ScriptedCall(AWAIT_TOOL, {"ids": ["fut_1"]})],
            "done",
        ]
    )
    return run(Agent(model, [fetch, compute], mode="async").run("go"))


def test_chrome_trace_has_model_and_call_events_and_lane_names(tmp_path: Path) -> None:
    result = traced_run()
    path = result.trace.save(tmp_path / "trace.json")
    data = json.loads(path.read_text())
    assert data == json.loads(json.dumps(result.trace.to_chrome()))
    events = data["traceEvents"]
    meta = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M"}
    assert all(e["name"] == "thread_name" and e["pid"] == 1 for e in events if e["ph"] == "M")
    complete = [e for e in events if e["ph"] == "X"]
    model_steps = [e for e in complete if e["cat"] == "model"]
    calls = [e for e in complete if e["cat"] == "call"]
    assert [e["name"] for e in model_steps] == [f"step {i}" for i in range(1, result.steps + 1)]
    assert sorted(e["name"] for e in calls) == ["compute", "fetch"]
    assert {meta[e["tid"]] for e in model_steps} == {"model"}
    assert {meta[e["tid"]] for e in calls} == {"fut_1 fetch", "fut_2 compute"}
    assert any(e["cat"] == "await" and e["name"] == AWAIT_TOOL for e in complete)
    for e in events:
        if e["ph"] != "M":
            assert e["tid"] in meta  # every lane is named
            assert e["ts"] >= 0
        if e["ph"] == "X":
            assert e["dur"] >= 0
    fetch = next(e for e in calls if e["name"] == "fetch")
    assert fetch["args"]["ok"] is True and fetch["args"]["seq"] == 1
    assert fetch["dur"] >= 4000  # microseconds: it slept 5 ms
    instants = [e for e in events if e["ph"] == "i"]
    assert {e["name"] for e in instants} >= {"emitted", "delivered"}
    assert data["displayTimeUnit"] == "ms"


def test_trace_spans_and_instants() -> None:
    trace = Trace()
    trace.span("b", "call", "lane 2", 0.5, 0.75, ok=False)
    trace.span("a", "model", "lane 1", 0.25, 0.5)
    trace.span("mark", "call", "lane 1", 0.3, None)
    trace.span("backwards", "call", "lane 1", 0.4, 0.3)
    chrome = trace.to_chrome()
    events = [e for e in chrome["traceEvents"] if e["ph"] != "M"]
    assert [e["name"] for e in events] == ["a", "mark", "backwards", "b"]  # sorted by start
    a, mark, backwards, b = events
    assert (a["ph"], a["ts"], a["dur"]) == ("X", 250000.0, 250000.0)
    assert mark["ph"] == "i" and mark["s"] == "t" and "dur" not in mark
    assert backwards["dur"] == 0.0
    assert b["args"] == {"ok": False}
    lanes = {e["args"]["name"]: e["tid"] for e in chrome["traceEvents"] if e["ph"] == "M"}
    assert lanes == {"lane 1": a["tid"], "lane 2": b["tid"]}
    assert trace.now() >= 0


def test_timeline_plot(tmp_path: Path) -> None:
    result = traced_run()
    out = plot_timeline({"async": result.trace}, tmp_path / "timeline.png", title="t")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_server_timed_step_splits_into_prefill_then_decode_ending_with_the_step() -> None:
    """A streamed tool call's first chunk comes tokens after the first token, so the time to
    first chunk does not mark where decode began: the server's own decode time does."""
    from asyncfc.models.base import ModelResponse, Usage

    trace = Trace()
    usage = Usage(input_tokens=100, prefill_s=0.5, decode_s=2.0, timing="server")
    trace.model_step(1, 10.0, 13.0, ModelResponse(usage=usage, ttft_s=1.5))
    spans = {s.cat: s for s in trace.spans}
    assert (spans["decode"].start, spans["decode"].end) == (11.0, 13.0)
    assert (spans["prefill"].start, spans["prefill"].end) == (10.5, 11.0)
    estimated = Trace()
    guess = Usage(prefill_s=1.5, decode_s=1.5, timing="estimated")
    estimated.model_step(1, 10.0, 13.0, ModelResponse(usage=guess, ttft_s=1.5))
    assert {s.cat: (s.start, s.end) for s in estimated.spans}["decode"] == (11.5, 13.0)
