"""The runtime driven by a real model: Qwen2.5-Coder 1.5B through llama-server, with the
defaults a user gets (``asyncfc.local.model()``: greedy, seeded, the embedded profile).

Run with `make test-llm` (downloads and builds on first use). A server the tests start is
stopped at the end; one that was already running is left as it was. Assertions are about
what the model reliably does at temperature 0: the final tool state, each call made once,
futures passed on in async mode. Tools sleep far less than a model step here, so what the
model sees at each step does not depend on timing.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from asyncfc import Agent, local
from asyncfc.agent import RunResult
from asyncfc.mode import ModeName as Mode
from asyncfc.models import Message, ModelRequest, ModelResponse, ResponseDone, ToolCallReady
from asyncfc_bench.demo import SYSTEM_PROMPT, TASK, Errands

pytestmark = [pytest.mark.llm, pytest.mark.timeout(1800)]


def _describe(result: RunResult) -> str:
    calls = "\n".join(f"  {c.id} {c.name}({c.raw_arguments}) -> {c.error or c.value!r}" for c in result.calls)
    return f"stop={result.stop_reason} steps={result.steps} answer={result.text!r}\n{calls}"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_demo_errand(llm_server: local.LocalServer, mode: Mode) -> None:
    async def run() -> tuple[RunResult, Errands]:
        world = Errands(lookup_s=0.2, email_s=0.05)
        async with Agent(local.model(), world.tools(), mode=mode, system_prompt=SYSTEM_PROMPT) as agent:
            return await agent.run(TASK), world

    result, world = asyncio.run(run())
    assert result.stop_reason == "answer", _describe(result)
    assert world.problems() == [], _describe(result)
    assert [c.name for c in result.calls].count("get_weather") == 3, _describe(result)
    assert result.usage.input_tokens > 0 and result.usage.cached_input_tokens > 0


def test_streaming_tool_calls_from_the_real_server(llm_server: local.LocalServer) -> None:
    """The adapter streams llama-server's tool-call deltas: a call is announced before the
    response ends and the first token comes before the last. Early dispatch of a call while
    later ones are still streaming is pinned against the simulated-decode server
    (tests/test_openai_adapter.py)."""

    async def run() -> tuple[list[object], ModelResponse]:
        events: list[object] = []
        request = ModelRequest(
            messages=[
                Message("system", SYSTEM_PROMPT),
                Message("user", "What is the weather in Paris? Use the tool."),
            ],
            tools=[t.spec() for t in Errands().tools()],
        )
        async with local.model() as model:
            async for event in model.stream(request):
                events.append(event)
        done = events[-1]
        assert isinstance(done, ResponseDone)
        return events, done.response

    events, response = asyncio.run(run())
    ready = [e for e in events if isinstance(e, ToolCallReady)]
    assert ready and ready[0].call.name == "get_weather", response
    assert json.loads(ready[0].call.arguments)["city"].lower() == "paris"
    assert [e.call for e in ready] == response.tool_calls
    assert response.ttft_s is not None and response.ttft_s < response.duration_s
    assert response.usage.input_tokens > 0 and response.usage.timing == "server"
