"""``asyncfc bench peers`` on scaled-down workloads: every system, the JSON keys, the checks."""

from __future__ import annotations

import asyncio
import json

import pytest

from asyncfc.bench.peers import SYSTEMS, PeerWorkload, State, run_peers, tiny_workloads
from asyncfc.cli import main
from asyncfc.models.base import Message, ToolCall

pytest.importorskip("pydantic_ai")
pytest.importorskip("agents")
pytest.importorskip("langgraph")


def test_every_system_on_tiny_workloads_agrees() -> None:
    data = asyncio.run(run_peers(tiny_workloads(), repeats=1, warmup=False))
    assert set(data["workloads"]) == {"chains", "sequential", "overhead"}
    assert {"python", "openai", "pydantic-ai-slim", "openai-agents", "langgraph"} <= set(data["versions"])
    for name, w in data["workloads"].items():
        assert set(w["systems"]) == set(SYSTEMS), name
        assert w["identical"] is True, name
        for system, row in w["systems"].items():
            assert {"wall_s", "speedup_vs_sync", "cpu_us_per_call"} <= set(row), system
            if row["wall_s"] is None:  # only a missing component may leave a system out, with a reason
                assert system.endswith("+asyncfc-mcp") and row["reason"], (name, system)
                continue
            assert row["wall_s"] > 0 and row["cpu_us_per_call"] > 0
            if "asyncfc" in system and system not in ("asyncfc-sync", "asyncfc-parallel"):
                assert row["delivered_once"] is True, (name, system)
        assert w["systems"]["asyncfc-sync"]["speedup_vs_sync"] == 1.0
    assert data["identical"] is True


def test_script_passes_futures_only_when_it_saw_placeholders() -> None:
    w = PeerWorkload("s", "sequential", lookups=1)
    assert w.calls == 2
    first = w.turn([Message("user", "go")])
    assert not isinstance(first, str) and first[0].name == "lookup"

    def after(content: str) -> dict[str, object]:
        transcript = [
            Message("user", "go"),
            Message("assistant", "", [ToolCall("c0", "lookup", '{"item": "item-0"}')]),
            Message("tool", content, tool_call_id="c0"),
        ]
        from asyncfc.models.scripted import render_turn

        _, calls = render_turn(w.turn, transcript)
        return dict(json.loads(calls[0].arguments))

    assert after('{"future": "fut_1", "status": "pending"}')["price"] == "fut_1"
    assert after("13.0")["price"] == 13.0
    state = State()
    assert [t.name for t in w.tools(state)] == ["lookup", "place_order"]


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "peers", "--tiny", "--json", "--repeats", "1", "--no-warmup", "--workloads", "overhead"]
    argv += ["--systems", "asyncfc-sync,asyncfc-async,pydantic-ai,pydantic-ai+asyncfc"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    systems = data["workloads"]["overhead"]["systems"]
    assert set(systems) == {"asyncfc-sync", "asyncfc-async", "pydantic-ai", "pydantic-ai+asyncfc"}
    assert data["workloads"]["overhead"]["identical"] is True
