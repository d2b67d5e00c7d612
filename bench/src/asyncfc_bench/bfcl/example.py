"""A worked example for a real model: the first user turn of a *different* BFCL entry.

A 1.5B model shown BFCL's functions cold repeats one call until the step limit (0 of 1
entries); the embedded model's profile shows that one finished task in the conversation
teaches a small model the shape of the work. Here the finished task is one user turn of
another entry (its first with two calls or more), the ground-truth calls played by the
replay model through asyncfc in the mode being measured, so the example shows what that
mode really shows: values in sync and parallel modes; placeholders, future ids passed on
and values delivered with later results in async mode. It ends with the answer (values
the runtime delivers after it are left out), and its future ids are renumbered from
``fut_91`` so they never name a future of the measured session.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from asyncfc.agent import Agent
from asyncfc.mode import ModeName
from asyncfc.models.base import Message, ModelProfile, ToolCall
from asyncfc_bench.bfcl.backends import instances_for, make_tools
from asyncfc_bench.bfcl.data import Entry
from asyncfc_bench.bfcl.replay import ReplayModel, build_plan

__all__ = [
    "FIRST_EXAMPLE_FUTURE",
    "INSTRUCTIONS",
    "example_entry",
    "example_turn",
    "with_example",
    "worked_example",
]

INSTRUCTIONS = (
    "The example task before the user's request shows how to work: its functions may not be "
    "available now; use only the tools you are given."
)

FIRST_EXAMPLE_FUTURE = 91

_FUTURE = re.compile(r"\bfut_(\d+)\b")


def example_turn(entry: Entry) -> int | None:
    """The user turn an example is made of: the first with two calls or more, else the first with one."""
    sized = [(t, len(calls)) for t, calls in enumerate(entry.ground_truth) if calls and entry.questions[t]]
    return next((t for t, n in sized if n >= 2), sized[0][0] if sized else None)


def example_entry(entry: Entry, pool: Sequence[Entry]) -> Entry | None:
    """The entry that gives ``entry`` its example: the first after it in ``pool`` (cyclically)
    with the same backend classes and a turn of two calls or more; failing that, the same
    classes; then any; ``None`` if no other entry has a turn that makes calls."""
    at = next((i for i, e in enumerate(pool) if e.id == entry.id), -1)
    ordered = [e for e in (*pool[at + 1 :], *pool[: max(at, 0)]) if e.id != entry.id]
    classes = set(entry.involved_classes)

    turns = {e.id: t for e in ordered if (t := example_turn(e)) is not None}

    def rank(e: Entry) -> tuple[bool, bool]:
        return set(e.involved_classes) != classes, len(e.ground_truth[turns[e.id]]) < 2

    return min((e for e in ordered if e.id in turns), key=rank, default=None)


def _renumbered(text: str) -> str:
    return _FUTURE.sub(lambda m: f"fut_{FIRST_EXAMPLE_FUTURE - 1 + int(m.group(1))}", text)


async def worked_example(example: Entry, mode: ModeName) -> list[Message]:
    """:func:`example_turn` of ``example`` as ``mode`` shows it, from its user message to the
    answer (instant tools, no grace window: in async mode every call answers with a
    placeholder and its value arrives with the next step's results). The turns before it
    are played too, so the backends are in their state, but left out."""
    turn = example_turn(example)
    if turn is None:
        raise ValueError(f"{example.id} has no user turn with calls")
    plan = build_plan(example, "parallel", max_steps=None)
    model = ReplayModel(plan, ttft_s=0.05, tokens_per_s=1e6)
    tools = make_tools(instances_for(example))
    agent = Agent(model, tools, mode=mode, grace_s=0.0, default_timeout=None)
    async with agent, agent.session() as session:
        for t in range(turn + 1):
            start = len(session.messages)
            result = await session.run([Message("user", m["content"]) for m in example.user_messages(t)])
    shown = result.messages[start:]
    end = next((i for i, m in enumerate(shown) if m.role == "assistant" and not m.tool_calls), len(shown) - 1)
    ids: dict[str, str] = {}

    def tool_call_id(old: str | None) -> str:
        return ids.setdefault(old or "", f"example_{len(ids) + 1}")

    out = []
    for m in shown[: end + 1]:
        calls = [ToolCall(tool_call_id(c.id), c.name, _renumbered(c.arguments)) for c in m.tool_calls]
        call_id = tool_call_id(m.tool_call_id) if m.role == "tool" else None
        out.append(Message(m.role, _renumbered(m.content), calls, call_id))
    return out


def with_example(profile: ModelProfile, messages: Sequence[Message]) -> ModelProfile:
    """``profile`` (a model's own, e.g. the embedded model's) with ``messages`` as its example."""
    forms = list(messages)
    return ModelProfile(
        instructions=INSTRUCTIONS,
        example=lambda _: forms,
        answer_repeats=profile.answer_repeats,
        step_s=profile.step_s,
        prefill_token_s=profile.prefill_token_s,
    )
