"""A real model's worked example from another BFCL entry, and the warm prompt cache."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

pytest.importorskip("bfcl_eval")

from asyncfc.testing import SimServer  # noqa: E402
from asyncfc_bench.bfcl import get_entry  # noqa: E402
from asyncfc_bench.bfcl.data import load_category  # noqa: E402
from asyncfc_bench.bfcl.example import example_entry, example_turn, worked_example  # noqa: E402
from asyncfc_bench.bfcl.replay import build_plan  # noqa: E402
from asyncfc_bench.bfcl.runner import Config, run_entry  # noqa: E402

BASE = "multi_turn_base"


def test_the_example_comes_from_another_entry_with_the_same_backends() -> None:
    pool = load_category(BASE)
    for entry in pool[:20]:
        source = example_entry(entry, pool)
        assert source is not None and source.id != entry.id
        assert set(source.involved_classes) == set(entry.involved_classes)
        turn = example_turn(source)
        assert turn is not None and len(source.ground_truth[turn]) >= 2
    assert example_entry(pool[0], [pool[0]]) is None


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_example_is_the_turn_as_the_mode_shows_it(mode: str) -> None:
    source = get_entry(f"{BASE}_5")
    turn = example_turn(source)
    assert turn is not None
    messages = asyncio.run(worked_example(source, mode))  # type: ignore[arg-type]
    assert messages[0].role == "user" and messages[0].content == source.questions[turn][0]["content"]
    assert messages[-1].role == "assistant" and messages[-1].content and not messages[-1].tool_calls
    calls = [c for m in messages for c in m.tool_calls]
    # in async mode a write held for a value it was written without follows an await
    made = [c.name for c in calls if c.name != "await_future"]
    assert made == [re.match(r"\w+", s).group(0) for s in source.ground_truth[turn]]  # type: ignore[union-attr]
    assert not any("not_run" in m.content for m in messages if m.role == "tool")  # every call ran
    answered = {m.tool_call_id for m in messages if m.role == "tool"}
    assert answered == {c.id for c in calls} and all(c.id.startswith("example_") for c in calls)
    text = json.dumps([[m.content, [c.arguments for c in m.tool_calls]] for m in messages])
    futures = {int(n) for n in re.findall(r"fut_(\d+)", text)}
    if mode == "sync":
        assert not futures
    else:
        assert futures and min(futures) >= 91  # never the name of a future of the measured session
        assert any(json.loads(m.content).get("status") == "pending" for m in messages if m.role == "tool")


@pytest.mark.parametrize("entry_id", [f"{BASE}_0", "multi_turn_miss_func_0"])
def test_a_real_model_gets_the_example_after_a_warm_up_request(entry_id: str) -> None:
    entry = get_entry(entry_id)
    config = Config(model="sim", delay_s=0.0, max_steps=2, modes=("async",))
    with SimServer(["ok"] * (2 * entry.turns + 1)) as srv:
        from asyncfc.models import OpenAIChatModel

        async def main() -> None:
            async with (
                OpenAIChatModel(srv.model_name, base_url=srv.base_url) as model,
                OpenAIChatModel(srv.model_name, base_url=srv.base_url, max_tokens=1) as warm,
            ):
                run = await run_entry(entry, build_plan(entry), "async", config, model=model, warm_model=warm)
            assert any(n.startswith(f"worked example: {entry.category}_") for n in run.notes)

        asyncio.run(main())
        bodies = [r.body for r in srv.model_requests]
    warm_up, first = bodies[0], bodies[1]
    assert warm_up["max_tokens"] == 1 and warm_up["messages"][-1]["content"] == "Hello"
    prefix = warm_up["messages"][:-1]
    assert first["messages"][: len(prefix)] == prefix  # the measured run starts on the warmed prefix
    assert first["tools"] == warm_up["tools"]
    example = [m for m in prefix if m["role"] != "system"]
    assert example[0]["role"] == "user" and example[0]["content"] != entry.questions[0][0]["content"]
    assert any("fut_91" in (m.get("content") or "") for m in example)
