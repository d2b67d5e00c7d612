"""The runtime driven by a real model: Qwen2.5-Coder 1.5B through llama-server.

Run with `make test-llm` (downloads and builds on first use; a running server is reused).
Every run is greedy (temperature 0, seed 0) with capped steps, and the tasks are ones the
1.5B completes reliably with the demo's system prompt and worked example
(`asyncfc.demo.task_messages`). Assertions are about what the model reliably does: the
final tool state, each call made once, placeholders passed on in async mode. Tools sleep
for a tenth of their demo latency, far less than a model step, so what the model sees at
each step does not depend on timing.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from asyncfc import Agent, local
from asyncfc.agent import RunResult
from asyncfc.demo import SYSTEM_PROMPT, TASKS, DemoTask, Errands, task_messages
from asyncfc.futures import REFERENCE
from asyncfc.models import OpenAIChatModel
from asyncfc.scheduler import Mode

pytestmark = [pytest.mark.llm, pytest.mark.timeout(1800)]

DELAY_SCALE = 0.1
MAX_STEPS = 6
CALLS = {"convert": 3, "rates_file": 3, "weather_email": 2, "weather_file": 2}
"""The calls each task needs: the model makes each exactly once."""


@pytest.fixture(scope="module")
def server() -> local.LocalServer:
    return local.ensure_server("1.5b")


async def _run(
    server: local.LocalServer, task: DemoTask, mode: Mode, **options: object
) -> tuple[RunResult, Errands]:
    world = Errands(delay_scale=DELAY_SCALE)
    async with OpenAIChatModel(
        server.model, base_url=server.base_url, temperature=0.0, seed=0, max_tokens=256
    ) as model:
        agent = Agent(
            model,
            world.tools(),
            mode=mode,
            system_prompt=SYSTEM_PROMPT,
            max_steps=MAX_STEPS,
            **options,  # type: ignore[arg-type]
        )
        result = await agent.run(task_messages(task.prompt, mode))
    return result, world


def _describe(result: RunResult) -> str:
    calls = "\n".join(f"  {c.id} {c.name}({c.raw_arguments}) -> {c.error or c.value!r}" for c in result.calls)
    return f"stop={result.stop_reason} steps={result.steps} answer={result.text!r}\n{calls}"


@pytest.mark.parametrize("name", list(TASKS))
def test_sync_task(server: local.LocalServer, name: str) -> None:
    task = TASKS[name]
    result, world = asyncio.run(_run(server, task, "sync"))
    assert result.stop_reason == "answer", _describe(result)
    assert task.problems(world) == [], _describe(result)
    assert len(result.calls) == CALLS[name], _describe(result)
    assert all(c.error is None for c in result.calls), _describe(result)


@pytest.mark.parametrize("name", list(TASKS))
def test_async_task(server: local.LocalServer, name: str) -> None:
    task = TASKS[name]
    result, world = asyncio.run(_run(server, task, "async"))
    info = _describe(result)
    assert result.stop_reason == "answer", info
    assert task.problems(world) == [], info
    assert len(result.calls) == CALLS[name], info
    assert all(c.error is None and c.deliveries == 1 for c in result.calls), info
    assert REFERENCE.search(result.text) is None, info  # the answer cites no raw future id
    # the model passed a placeholder on: a later call names an earlier future in its raw
    # arguments, the runtime recorded the dependency and ran the tool with the value
    passing = [c for c in result.calls if REFERENCE.search(c.raw_arguments)]
    assert passing, info
    for call in passing:
        assert call.deps and all(d < call.seq for d in call.deps), info
        assert call.resolved_arguments is not None, info
        assert "fut_" not in json.dumps(call.resolved_arguments), info


def test_async_chain_substitutes_the_value(server: local.LocalServer) -> None:
    """convert: the rate's future goes into multiply, multiply's into the file."""
    result, world = asyncio.run(_run(server, TASKS["convert"], "async"))
    info = _describe(result)
    rate, product, write = result.calls
    assert (rate.name, product.name, write.name) == ("get_exchange_rate", "multiply", "write_file"), info
    assert rate.id in product.raw_arguments and product.deps == [rate.seq], info
    assert 1.08 in product.resolved_arguments.values(), info  # type: ignore[union-attr]
    assert product.value == 270.0, info
    assert "270" in world.files["usd.txt"], info


STEPWISE_PROMPT = (
    "You are a helpful assistant that uses tools. Work through the user's task step by step, one "
    "tool call per step. Each step is done once its tool result appears; never repeat a step. After "
    "the last step, stop calling tools and reply with one sentence saying what you did."
)
STEPWISE_TASK = (
    "Step 1: get the weather in Paris. Step 2: get the weather in Tokyo. Step 3: send one email to "
    "alice@example.com with both reports. Then reply done."
)


def test_streaming_dispatches_calls_before_the_step_ends(server: local.LocalServer) -> None:
    """With this prompt (and no worked example) the 1.5B writes all three calls in its first
    response. In parallel mode (same prompt as sync), the calls released while the stream is
    still running start before the model step ends. The content of the email is not checked:
    without the example the model makes the reports up."""

    async def run() -> RunResult:
        world = Errands(delay_scale=DELAY_SCALE)
        async with OpenAIChatModel(
            server.model, base_url=server.base_url, temperature=0.0, seed=0, max_tokens=256
        ) as model:
            agent = Agent(model, world.tools(), mode="parallel", system_prompt=STEPWISE_PROMPT, max_steps=3)
            return await agent.run(STEPWISE_TASK)

    result = asyncio.run(run())
    first = [c for c in result.calls if c.step == 1]
    assert len(first) >= 2, _describe(result)
    step_end = next(s.end for s in result.trace.spans if s.lane == "model" and s.name == "step 1")
    assert step_end is not None
    for call in first[:-1]:  # a call is released when the next one starts in the stream
        assert call.started_at is not None and call.started_at < step_end, _describe(result)
