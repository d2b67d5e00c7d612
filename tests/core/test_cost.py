"""What the model pays for: prompt tokens, cached tokens, prefill and decode time per step.

Usage goes through the real ``openai`` and ``anthropic`` SDKs over real HTTP to the
SimServer, which reports it as llama-server and the hosted APIs do; the server's prefix
cache follows llama-server's single slot. No timing is asserted beyond ordering.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from openai.types import CompletionUsage

from asyncfc import Agent, tool
from asyncfc.models.anthropic_messages import AnthropicMessagesModel
from asyncfc.models.base import Message, ModelRequest, ModelResponse, ToolCall, Usage, complete
from asyncfc.models.openai_chat import OpenAIChatModel, usage_from_openai
from asyncfc.testing.scripted import ScriptedCall, Turn
from asyncfc.testing.simserver import SimServer, prompt_tokens, shared_prefix
from asyncfc.trace import Trace, plot_timeline

TOOLS = [
    {
        "name": "lookup",
        "description": "Look a key up.",
        "parameters": {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]},
    }
]
SYSTEM = Message("system", "You are a careful assistant. " * 8)
USER = Message("user", "Look up a, then b, then tell me both.")
Wire = str  # "openai" or "anthropic"


def history(n: int) -> list[Message]:
    """A transcript after ``n`` lookups, each answered, as an append-only agent would send it."""
    out = [SYSTEM, USER]
    for i in range(n):
        out.append(Message("assistant", "", [ToolCall(f"call_{i}", "lookup", json.dumps({"key": f"k{i}"}))]))
        out.append(Message("tool", json.dumps({"value": i * 10}), tool_call_id=f"call_{i}"))
    return out


def adapter(srv: SimServer, wire: Wire, stream: bool = True) -> OpenAIChatModel | AnthropicMessagesModel:
    if wire == "openai":
        return OpenAIChatModel("sim", base_url=srv.base_url, stream=stream)
    return AnthropicMessagesModel("sim", base_url=srv.anthropic_base_url, api_key="test", stream=stream)


def ask(
    srv: SimServer, wire: Wire, transcripts: Sequence[Sequence[Message]], stream: bool = True
) -> list[Usage]:
    """Send each transcript in turn through one adapter; the usage of each response."""

    async def go() -> list[Usage]:
        async with adapter(srv, wire, stream) as model:
            return [(await complete(model, ModelRequest(t, TOOLS))).usage for t in transcripts]

    return asyncio.run(go())


def turns(n: int) -> list[Turn]:
    out: list[Turn] = [[ScriptedCall("lookup", {"key": f"k{i}"})] for i in range(n)]
    return [*out, "a=0, b=10"]


# -- usage through the SDKs -------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_prompt_and_cached_tokens_through_the_sdks(wire: Wire, stream: bool) -> None:
    with SimServer(turns(2)) as srv:
        usages = ask(srv, wire, [history(0), history(1), history(2)], stream)
        recorded = srv.model_requests
    sizes = [len(prompt_tokens(history(i), TOOLS)) for i in range(3)]
    assert [u.input_tokens for u in usages] == sizes == [r.prompt_tokens for r in recorded]
    assert [u.cached_input_tokens for u in usages] == [r.cached_tokens for r in recorded]
    first, second, third = usages
    assert first.cached_input_tokens == 0  # a cold cache
    # append-only: each request finds the whole previous prompt and the answer in the cache
    assert second.cached_input_tokens == len(prompt_tokens(history(0), TOOLS) + answer_tokens(0))
    assert sizes[0] < second.cached_input_tokens < third.cached_input_tokens < sizes[2]
    assert all(u.uncached_input_tokens == u.input_tokens - u.cached_input_tokens for u in usages)
    assert all(u.output_tokens > 0 and u.cache_write_tokens == 0 for u in usages)


def answer_tokens(i: int) -> list[str]:
    """The tokens of the i-th scripted answer as the next request repeats it (the assistant message)."""
    return prompt_tokens(history(i + 1)[2 * i + 2 : 2 * i + 3])


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_an_edited_earlier_message_drops_the_cache_to_that_point(wire: Wire) -> None:
    edited = history(2)
    edited[3] = Message("tool", json.dumps({"value": "rewritten"}), tool_call_id="call_0")  # first result
    with SimServer(turns(3)) as srv:
        appended = ask(srv, wire, [history(1), history(2)])
        srv.clear_cache()
        rewritten = ask(srv, wire, [history(1), edited])
    prefix = len(prompt_tokens(history(2)[:3], TOOLS))  # everything before the edited message
    assert appended[1].cached_input_tokens > prefix
    # from the edited message on nothing is reused but its first tokens (the role header)
    assert prefix <= rewritten[1].cached_input_tokens < prefix + len(prompt_tokens(edited[3:4]))
    assert rewritten[1].input_tokens == len(prompt_tokens(edited, TOOLS))
    assert rewritten[1].uncached_input_tokens > appended[1].uncached_input_tokens


def test_cache_holds_one_slot_and_can_be_bypassed() -> None:
    other = [SYSTEM, Message("user", "Something else entirely.")]
    with SimServer(["a", "b", "c", "d", "e"]) as srv:
        usages = ask(srv, "openai", [history(1), other, history(1), history(1)])
        srv.clear_cache()

        async def no_cache() -> Usage:
            model = OpenAIChatModel("sim", base_url=srv.base_url, extra_body={"cache_prompt": False})
            async with model:
                await complete(model, ModelRequest(history(1), TOOLS))
                return (await complete(model, ModelRequest(history(1), TOOLS))).usage

        bypassed = asyncio.run(no_cache())
    whole = len(prompt_tokens(history(1), TOOLS))
    # another prompt evicts the first (one slot); only the prefix both share stays useful
    assert len(prompt_tokens([SYSTEM], TOOLS)) < usages[2].cached_input_tokens < whole
    assert usages[2].cached_input_tokens == shared_prefix(
        prompt_tokens(other, TOOLS), prompt_tokens(history(1), TOOLS)
    )
    # an identical prompt: all but its last token (llama-server always evaluates that one again)
    assert usages[3].cached_input_tokens == whole - 1
    assert bypassed.cached_input_tokens == 0


def test_both_wires_count_the_same_prompt_alike() -> None:
    with SimServer(turns(2)) as srv:
        openai_usage = ask(srv, "openai", [history(1)])
        srv.clear_cache()
        anthropic_usage = ask(srv, "anthropic", [history(1)])
    assert (
        openai_usage[0].input_tokens
        == anthropic_usage[0].input_tokens
        == len(prompt_tokens(history(1), TOOLS))
    )


# -- prefill and decode time ------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
def test_llama_timings_give_prefill_and_decode(stream: bool) -> None:
    rate = 20_000.0  # prompt tokens per second: a cold 200-token prompt takes 10 ms
    with SimServer(turns(2), ttft_s=0.01, tokens_per_s=2000, prefill_tokens_per_s=rate) as srv:
        cold, warm = ask(srv, "openai", [history(0), history(1)], stream)
    for u in (cold, warm):
        assert u.timing == "server"
        assert u.prefill_s == pytest.approx(0.01 + u.uncached_input_tokens / rate)
        assert u.decode_s > 0
    assert warm.cached_input_tokens > 0
    assert warm.uncached_input_tokens < cold.uncached_input_tokens
    assert warm.prefill_s < cold.prefill_s  # the cache saves prompt processing


def test_prefill_is_simulated_before_the_first_token() -> None:
    rate = 4000.0
    with SimServer(["done"], prefill_tokens_per_s=rate) as srv:

        async def go() -> ModelResponse:
            async with OpenAIChatModel("sim", base_url=srv.base_url) as model:
                return await complete(model, ModelRequest(history(2), TOOLS))

        response = asyncio.run(go())
    assert response.ttft_s is not None
    assert response.ttft_s >= response.usage.uncached_input_tokens / rate  # the server slept at least that


def test_without_server_timings_prefill_is_the_time_to_first_token() -> None:
    with SimServer(turns(1), ttft_s=0.02, tokens_per_s=1000, timings=False) as srv:

        async def go(stream: bool) -> ModelResponse:
            async with OpenAIChatModel("sim", base_url=srv.base_url, stream=stream) as model:
                return await complete(model, ModelRequest(history(0), TOOLS))

        streamed = asyncio.run(go(True))
        whole = asyncio.run(go(False))
        body = srv.model_requests[0].body
    assert body["stream_options"] == {"include_usage": True}
    u = streamed.usage
    assert u.timing == "estimated" and streamed.ttft_s is not None
    assert u.prefill_s == streamed.ttft_s
    assert u.decode_s == pytest.approx(streamed.duration_s - streamed.ttft_s)
    assert u.cached_input_tokens == 0 and u.input_tokens > 0  # usage still comes from the usage chunk
    # nothing to split a non-streamed response by: no timings claimed
    assert whole.usage.timing == "" and whole.usage.prefill_s == whole.usage.decode_s == 0.0


@pytest.mark.parametrize("stream", [True, False])
def test_anthropic_timing_is_estimated(stream: bool) -> None:
    with SimServer(turns(1), ttft_s=0.01) as srv:
        (u,) = ask(srv, "anthropic", [history(0)], stream)
    assert u.timing == ("estimated" if stream else "")
    assert u.prefill_s >= (0.01 if stream else 0.0)


# -- reading usage ----------------------------------------------------------------------


def test_usage_from_openai_and_llama_fields() -> None:
    openai_usage = CompletionUsage.model_validate(
        {
            "prompt_tokens": 1200,
            "completion_tokens": 30,
            "total_tokens": 1230,
            "prompt_tokens_details": {"cached_tokens": 1024},
        }
    )
    u = usage_from_openai(openai_usage)
    assert (u.input_tokens, u.cached_input_tokens, u.output_tokens, u.timing) == (1200, 1024, 30, "")
    llama = {"cache_n": 90, "prompt_n": 10, "prompt_ms": 250.0, "predicted_n": 7, "predicted_ms": 70.0}
    u = usage_from_openai(None, llama)  # an older llama-server: timings, no usage
    assert (u.input_tokens, u.cached_input_tokens, u.output_tokens) == (100, 90, 7)
    assert (u.prefill_s, u.decode_s, u.timing) == (0.25, 0.07, "server")
    plain = CompletionUsage(prompt_tokens=100, completion_tokens=7, total_tokens=107)
    assert usage_from_openai(plain, llama).cached_input_tokens == 90  # cache_n when usage has no details
    assert usage_from_openai(None, {"prompt_n": "x", "prompt_ms": None}).timing == "server"
    assert usage_from_openai(None, "not an object") == Usage()


def test_usage_sums() -> None:
    a = Usage(100, 10, cached_input_tokens=0, prefill_s=1.0, decode_s=0.5, timing="server")
    b = Usage(
        150, 5, cached_input_tokens=110, cache_write_tokens=3, prefill_s=0.25, decode_s=0.25, timing="server"
    )
    total = Usage.total([a, b])
    assert (total.input_tokens, total.output_tokens, total.cached_input_tokens) == (250, 15, 110)
    assert (total.cache_write_tokens, total.prefill_s, total.decode_s) == (3, 1.25, 0.75)
    assert total.steps == 2 and total.timing == "server"
    assert total == a + b
    assert total.uncached_input_tokens == 140 and total.cache_hit_rate == pytest.approx(0.44)
    assert Usage.total([]) == Usage(steps=0) and Usage().cache_hit_rate == 0.0
    assert (a + Usage(1, 1, timing="estimated")).timing == "estimated"
    assert (Usage() + Usage()).timing == ""
    assert total.to_dict() == {
        "steps": 2,
        "prompt_tokens": 250,
        "cached_prompt_tokens": 110,
        "uncached_prompt_tokens": 140,
        "cache_write_tokens": 3,
        "output_tokens": 15,
        "prefill_s": 1.25,
        "decode_s": 0.75,
        "timing": "server",
    }


# -- the trace --------------------------------------------------------------------------


def step_response(usage: Usage, ttft_s: float | None) -> ModelResponse:
    return ModelResponse(
        tool_calls=[ToolCall("c", "lookup", "{}")], usage=usage, ttft_s=ttft_s, duration_s=1.0
    )


def test_trace_splits_a_model_step_into_prefill_and_decode(tmp_path: Path) -> None:
    trace = Trace()
    u1 = Usage(400, 20, cached_input_tokens=0, prefill_s=0.5, decode_s=0.375, timing="server")
    u2 = Usage(480, 20, cached_input_tokens=420, prefill_s=0.125, decode_s=0.375, timing="server")
    step = trace.model_step(1, 1.0, 2.0, step_response(u1, 0.625))
    trace.model_step(2, 3.0, 3.5, step_response(u2, 0.125), note="warm")
    trace.model_step(3, 4.0, 4.5, step_response(Usage(500, 5), None))  # no timings: no split
    assert (step.name, step.cat, step.lane) == ("step 1", "model", "model")
    assert step.args["prompt_tokens"] == 400 and step.args["cached_prompt_tokens"] == 0
    spans = [s for s in trace.spans if s.lane == "model"]
    assert [(s.name, s.cat) for s in spans] == [
        ("step 1", "model"),
        ("prefill", "prefill"),
        ("decode", "decode"),
        ("step 2", "model"),
        ("prefill", "prefill"),
        ("decode", "decode"),
        ("step 3", "model"),
    ]
    _, prefill, decode, second, prefill2, _, _ = spans
    # prefill ends at the first token; its server-measured length goes back from there
    assert (prefill.start, prefill.end) == (1.125, 1.625)
    assert (decode.start, decode.end) == (1.625, 2.0)
    assert prefill.args["processed_tokens"] == 400 and prefill2.args["cached_tokens"] == 420
    assert decode.args["output_tokens"] == 20
    assert second.args["note"] == "warm"
    for parent, child in [(spans[0], prefill), (spans[0], decode), (second, prefill2)]:
        assert parent.start <= child.start <= (child.end or 0) <= (parent.end or 0)

    cost = trace.model_cost()
    assert (cost.steps, cost.input_tokens, cost.cached_input_tokens) == (3, 1380, 420)
    assert trace.model_cost(since=2.5).steps == 2 and trace.usages(since=3.5)[0].input_tokens == 500

    events = trace.to_chrome()["traceEvents"]
    lanes = {e["args"]["name"]: e["tid"] for e in events if e["ph"] == "M"}
    model = [e for e in events if e["ph"] == "X" and e["tid"] == lanes["model"]]
    assert [e["name"] for e in model][:3] == ["step 1", "prefill", "decode"]  # parent first: it nests
    counters = [e for e in events if e["ph"] == "C"]
    assert [e["args"] for e in counters] == [
        {"cached": 0, "processed": 400},
        {"cached": 420, "processed": 60},
        {"cached": 0, "processed": 500},
    ]
    assert all(e["name"] == "prompt tokens" and e["tid"] == lanes["model"] for e in counters)
    png = plot_timeline({"async": trace}, tmp_path / "t.png")
    assert png.stat().st_size > 1000


def test_estimated_split_fills_the_step() -> None:
    trace = Trace()
    usage = Usage(10, 10)
    usage.estimate_timing(0.25, 1.0)
    assert (usage.prefill_s, usage.decode_s, usage.timing) == (0.25, 0.75, "estimated")
    trace.model_step("final", 2.0, 3.0, step_response(usage, 0.25))
    step, prefill, decode = trace.spans
    assert step.name == "final"
    assert (prefill.start, prefill.end, decode.start, decode.end) == (2.0, 2.25, 2.25, 3.0)


# -- a whole agent run --------------------------------------------------------------------


def test_sync_agent_history_is_append_only_so_the_cache_grows() -> None:
    @tool(pure=True)
    def lookup(key: str) -> dict[str, Any]:
        """Look a key up."""
        return {"key": key, "value": len(key)}

    with SimServer(turns(3)) as srv:

        async def go() -> None:
            model = OpenAIChatModel("sim", base_url=srv.base_url)
            async with model:
                await Agent(model, [lookup], mode="sync").run("look up three keys")

        asyncio.run(go())
        recorded = srv.model_requests
    assert len(recorded) == 4
    assert recorded[0].cached_tokens == 0
    for before, after in zip(recorded, recorded[1:], strict=False):
        # the whole previous prompt and its answer are found again
        assert after.cached_tokens > before.prompt_tokens
        assert after.prompt_tokens > after.cached_tokens
