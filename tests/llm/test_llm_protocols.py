"""The Responses and Anthropic adapters driving the embedded model (Qwen2.5-Coder 1.5B through
llama-server, which serves ``/v1/responses`` and ``/v1/messages`` besides chat completions)
through the demo's multi-step errand, in sync and async mode.

Run with `make test-llm`. Greedy (temperature 0; the Responses requests also carry seed 0,
which llama-server honours; the Anthropic wire has no seed), with the embedded profile, as
``asyncfc.local.model()`` runs the chat wire. Native async tools are not tried here: the
embedded server does not implement them.
"""

from __future__ import annotations

import asyncio

import pytest

from asyncfc import Agent, local
from asyncfc.agent import RunResult
from asyncfc.local import EMBEDDED_PROFILE
from asyncfc.models import AnthropicMessagesModel, Model, OpenAIResponsesModel
from asyncfc_bench.demo import SYSTEM_PROMPT, TASK, Errands

pytestmark = [pytest.mark.llm, pytest.mark.timeout(1800)]


def _model(server: local.LocalServer, wire: str) -> Model:
    model: OpenAIResponsesModel | AnthropicMessagesModel
    if wire == "responses":
        model = OpenAIResponsesModel(
            server.model, base_url=server.base_url, temperature=0.0, seed=0, max_output_tokens=384
        )
    else:
        root = server.base_url.removesuffix("/v1")  # the Anthropic SDK adds /v1/messages
        model = AnthropicMessagesModel(server.model, base_url=root, temperature=0.0, max_tokens=384)
    model.profile = EMBEDDED_PROFILE  # type: ignore[union-attr]
    return model


def _describe(result: RunResult) -> str:
    calls = "\n".join(f"  {c.id} {c.name}({c.raw_arguments}) -> {c.error or c.value!r}" for c in result.calls)
    return f"stop={result.stop_reason} steps={result.steps} answer={result.text!r}\n{calls}"


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("wire", ["responses", "anthropic"])
def test_the_demo_errand_over_the_wire(llm_server: local.LocalServer, wire: str, mode: str) -> None:
    async def run() -> tuple[RunResult, Errands]:
        world = Errands(lookup_s=0.2, email_s=0.05)
        async with Agent(
            _model(llm_server, wire), world.tools(), mode=mode, system_prompt=SYSTEM_PROMPT
        ) as agent:
            return await agent.run(TASK), world

    result, world = asyncio.run(run())
    print(f"[{wire} {mode}] {_describe(result)}")
    assert result.stop_reason == "answer", _describe(result)
    assert world.problems() == [], _describe(result)
    assert [c.name for c in result.calls].count("get_weather") == 3, _describe(result)
    assert result.usage.input_tokens > 0
