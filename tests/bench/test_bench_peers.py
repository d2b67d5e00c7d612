"""``asyncfc bench peers`` on scaled-down workloads: every system, the JSON keys, the checks."""

from __future__ import annotations

import asyncio
import importlib.util
import json

import pytest

from asyncfc.cli import main
from asyncfc.models.base import Message, ToolCall
from asyncfc_bench.peers import SYSTEMS, PeerWorkload, State, run_peers, tiny_workloads

pytest.importorskip("pydantic_ai")
pytest.importorskip("agents")
pytest.importorskip("langgraph")


PROXIED = ("pydantic-ai+asyncfc-mcp", "openai-agents+asyncfc-mcp")


def test_every_system_on_tiny_workloads_agrees() -> None:
    # the proxied systems (two processes per run) are checked once each, below, to keep this short
    systems = [s for s in SYSTEMS if s not in PROXIED]
    workloads = {k: v for k, v in tiny_workloads().items() if k != "overhead"}  # the CLI test runs that one
    data = asyncio.run(run_peers(workloads, systems, repeats=1, warmup=False))
    assert set(data["workloads"]) == {"chains", "sequential"}
    assert {"python", "openai", "pydantic-ai-slim", "openai-agents", "langgraph"} <= set(data["versions"])
    for name, w in data["workloads"].items():
        assert set(w["systems"]) == set(systems), name
        assert w["identical"] is True, name
        for system, row in w["systems"].items():
            assert {"wall_s", "speedup_vs_sync", "cpu_us_per_call"} <= set(row), system
            if row["wall_s"] is None:  # only a missing component may leave a system out, with a reason
                assert system.endswith("+asyncfc-mcp") and row["reason"], (name, system)
                continue
            assert row["wall_s"] > 0 and row["cpu_us_per_call"] > 0
            if system.endswith("+asyncfc") or system == "asyncfc-async":
                assert row["delivered_once"] is True, (name, system)
        assert w["systems"]["asyncfc-sync"]["speedup_vs_sync"] == 1.0
    assert data["identical"] is True


@pytest.mark.parametrize("system", PROXIED)
def test_framework_through_the_mcp_proxy_agrees_with_sync(system: str) -> None:
    pytest.importorskip("mcp")
    if system.startswith("pydantic-ai"):
        pytest.importorskip("fastmcp")
    workload = {"sequential": tiny_workloads()["sequential"]}
    data = asyncio.run(run_peers(workload, ["asyncfc-sync", system], repeats=1, warmup=False))
    w = data["workloads"]["sequential"]
    assert w["identical"] is True
    row = w["systems"][system]
    assert row["wall_s"] > 0 and row["calls"] == 4
    assert row["model_requests"] == 5  # one call per response, then the answer


def test_langgraph_through_the_proxy_is_unavailable_with_the_reason() -> None:
    """langchain-mcp-adapters does not work with mcp 2 (the proxy's SDK): reported, not run."""
    pytest.importorskip("mcp")
    if importlib.util.find_spec("langchain_mcp_adapters") is not None:
        pytest.skip("langchain-mcp-adapters is installed here")
    workload = {"overhead": tiny_workloads()["overhead"]}
    data = asyncio.run(
        run_peers(workload, ["asyncfc-sync", "langgraph+asyncfc-mcp"], repeats=1, warmup=False)
    )
    row = data["workloads"]["overhead"]["systems"]["langgraph+asyncfc-mcp"]
    assert row["available"] is False and row["wall_s"] is None
    assert "langchain-mcp-adapters" in row["reason"] and "mcp<2" in row["reason"]
    assert data["workloads"]["overhead"]["identical"] is True


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
        from asyncfc.testing.scripted import render_turn

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
