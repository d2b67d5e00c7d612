"""The end of a user turn (asyncfc.revise): the policy, the rule, and the framework driver.

The driver is exercised with a tiny fake framework: each of its runs makes calls through a
``HostedRuntime`` the way a framework's tools do, and answers. Every tool waits on a gate
that the run opens just before it answers, so the calls are pending at the answer and
resolve while the driver settles them: no timing is involved.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from asyncfc import Agent, Call, ConfigurationError, Runtime, tool
from asyncfc.integrations.hosted import HostedRuntime
from asyncfc.model_text import SETTLED_PROMPT
from asyncfc.models.base import Message
from asyncfc.revise import (
    POLICIES,
    HostedRun,
    Revise,
    revision_needed,
    settle_and_revise,
)
from asyncfc.testing import ScriptedCall, ScriptedModel
from asyncfc.tools import Tool


def gated_tools(gates: dict[int, asyncio.Event]) -> list[Tool]:
    @tool(pure=True)
    async def slow(x: int, fail: bool = False) -> int:
        """Waits for its gate; fails when asked to."""
        await gates[x].wait()
        if fail:
            raise RuntimeError("backend down")
        return x * 10

    @tool(pure=True)
    def quick(x: int) -> int:
        """Answers at once."""
        return x

    return [slow, quick]


@dataclass
class FakeRun:
    """A fake framework's result: the answer, and the user messages it was run with."""

    answer: str
    prompts: list[str] = field(default_factory=list)


@dataclass
class Step:
    """What one run of the fake framework does: its calls (name, arguments), then its answer."""

    answer: str
    calls: list[tuple[str, dict[str, object]]] = field(default_factory=list)


class FakeFramework:
    """Plays one :class:`Step` per run over a host; pending calls resolve once it has answered."""

    def __init__(self, host: HostedRuntime, gates: dict[int, asyncio.Event], steps: Sequence[Step]) -> None:
        self.host, self.gates, self.steps = host, gates, list(steps)
        self.runs = 0

    async def run(self, prompts: list[str]) -> FakeRun:
        step = self.steps[self.runs]
        self.runs += 1
        opened = []
        for name, arguments in step.calls:
            x = int(str(arguments["x"]))
            self.gates.setdefault(x, asyncio.Event())
            await self.host.call(name, arguments)
            opened.append(x)
        for x in opened:  # the calls are still pending when the answer is given
            self.gates[x].set()
        return FakeRun(step.answer, prompts)

    async def again(self, previous: FakeRun, message: str) -> FakeRun:
        return await self.run([*previous.prompts, message])


def drive(
    steps: Sequence[Step], revise: Revise = "when_needed", max_revisions: int = 1, grace_s: float = 0
) -> tuple[HostedRun[FakeRun], FakeFramework]:
    async def main() -> tuple[HostedRun[FakeRun], FakeFramework]:
        gates: dict[int, asyncio.Event] = {}
        async with HostedRuntime(
            gated_tools(gates), grace_s=grace_s, revise=revise, max_revisions=max_revisions
        ) as host:
            framework = FakeFramework(host, gates, steps)
            first = await framework.run(["go"])
            out = await settle_and_revise(host, first, framework.again, lambda r: r.answer)
            return out, framework

    return asyncio.run(main())


def slow(x: int, fail: bool = False) -> tuple[str, dict[str, object]]:
    return ("slow", {"x": x, "fail": fail})


# -- the rule ------------------------------------------------------------------------


def settled_calls(fail: bool) -> list[Call]:
    """One call, settled: failed or not."""

    async def main() -> list[Call]:
        gates = {1: asyncio.Event()}
        gates[1].set()
        async with Runtime(gated_tools(gates), grace_s=0) as runtime:
            reply = await runtime.call("slow", {"x": 1, "fail": fail})
            await runtime.settle()
            assert reply.call is not None
            return [reply.call]

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("revise", "answer", "fail", "expected"),
    [
        ("when_needed", "all done", False, False),
        ("when_needed", "the value is fut_1", False, True),
        ("when_needed", "the total is fut_1.total", False, True),
        ("when_needed", "all done", True, True),
        ("always", "all done", False, True),
        ("never", "the value is fut_1", True, False),
    ],
)
def test_revision_needed_by_policy(revise: Revise, answer: str, fail: bool, expected: bool) -> None:
    assert revision_needed(answer, settled_calls(fail), revise) is expected


@pytest.mark.parametrize("revise", POLICIES)
def test_nothing_pending_needs_no_revision(revise: Revise) -> None:
    assert not revision_needed("the value is fut_1", [], revise)


def test_policies_are_the_three_values() -> None:
    assert set(POLICIES) == {"when_needed", "always", "never"}


# -- the driver ------------------------------------------------------------------------


def test_nothing_pending_means_no_settling_and_no_revision() -> None:
    out, framework = drive([Step("done: fut_1")], revise="always")
    assert framework.runs == 1 and out.revisions == 0 and out.settled == [] and out.calls == []
    assert out.output == "done: fut_1" and out.result.prompts == ["go"]


def test_values_already_delivered_need_no_revision() -> None:
    # a generous window: the quick call is answered with its value, nothing is left pending
    out, framework = drive([Step("done: fut_1", [("quick", {"x": 1})])], revise="always", grace_s=60)
    assert framework.runs == 1 and out.revisions == 0 and out.settled == []
    assert [c.deliveries for c in out.calls] == [1]


def test_when_needed_a_clean_answer_stands_and_the_caller_gets_the_values() -> None:
    out, framework = drive([Step("all done", [slow(1)]), Step("never asked")])
    assert framework.runs == 1 and out.revisions == 0 and out.output == "all done"
    assert len(out.settled) == 1
    assert json.loads(out.settled[0]) == [{"future": "fut_1", "status": "resolved", "value": 10}]
    assert all(c.done and c.deliveries == 1 for c in out.calls)


def test_when_needed_a_cited_future_gets_a_revision_with_the_values() -> None:
    out, framework = drive([Step("the value is fut_1", [slow(1)]), Step("the value is 10")])
    assert framework.runs == 2 and out.revisions == 1
    assert out.output == "the value is 10" and out.result.answer == "the value is 10"
    assert out.result.prompts == ["go", SETTLED_PROMPT.format(results=out.settled[0])]
    assert '"value": 10' in out.result.prompts[-1]
    assert all(c.deliveries == 1 for c in out.calls)


def test_when_needed_a_failed_call_gets_a_revision() -> None:
    out, framework = drive([Step("all done", [slow(1, fail=True)]), Step("it failed")])
    assert framework.runs == 2 and out.revisions == 1 and out.output == "it failed"
    assert "backend down" in out.result.prompts[-1]
    assert out.calls[0].error is not None and out.calls[0].deliveries == 1


def test_always_revises_even_a_clean_answer() -> None:
    out, framework = drive([Step("all done", [slow(1)]), Step("still done")], revise="always")
    assert framework.runs == 2 and out.revisions == 1 and out.output == "still done"


def test_never_keeps_the_answer_and_hands_the_values_to_the_caller() -> None:
    out, framework = drive([Step("see fut_1", [slow(1, fail=True)]), Step("never asked")], revise="never")
    assert framework.runs == 1 and out.revisions == 0 and out.output == "see fut_1"
    assert len(out.settled) == 1 and "backend down" in out.settled[0]
    assert out.calls[0].deliveries == 1


def test_revisions_are_bounded_and_every_value_is_delivered_once() -> None:
    # every run leaves a new call pending, so "always" would revise forever
    steps = [Step(f"answer {i}", [slow(i)]) for i in range(1, 6)]
    out, framework = drive(steps, revise="always", max_revisions=2)
    assert framework.runs == 3 and out.revisions == 2 and out.output == "answer 3"
    # three settlements: two went to the model, the last one to the caller only
    assert [json.loads(s)[0]["future"] for s in out.settled] == ["fut_1", "fut_2", "fut_3"]
    assert out.result.prompts[1:] == [SETTLED_PROMPT.format(results=s) for s in out.settled[:2]]
    assert [c.deliveries for c in out.calls] == [1, 1, 1]


def test_no_revision_allowed() -> None:
    out, framework = drive([Step("see fut_1", [slow(1)]), Step("never asked")], max_revisions=0)
    assert framework.runs == 1 and out.revisions == 0 and len(out.settled) == 1


def test_hosted_policy_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="when_needed, always, never"):
        HostedRuntime(gated_tools({}), revise="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        HostedRuntime(gated_tools({}), max_revisions=-1)


# -- the Agent: same policy values, same rule ------------------------------------------


def test_agent_accepts_the_three_policies_only() -> None:
    model = ScriptedModel(["hi"])
    for policy in POLICIES:
        assert Agent(model, [], revise=policy).revise == policy
    with pytest.raises(ConfigurationError, match="when_needed, always, never"):
        Agent(model, [], revise="sometimes")  # type: ignore[arg-type]


def test_agent_never_keeps_the_answer_and_delivers_the_values_into_the_transcript() -> None:
    async def main() -> tuple[str, list[Message], list[Call], int]:
        gates = {1: asyncio.Event()}

        def final(transcript: Sequence[Message]) -> str:
            gates[1].set()  # the call is still pending when this answer is given
            return "the value is fut_1"

        model = ScriptedModel([[ScriptedCall("slow", {"x": 1, "fail": True})], final, "revised"])
        result = await Agent(model, gated_tools(gates), mode="async", grace_s=0, revise="never").run("go")
        return result.text, result.messages, result.calls, len(model.requests)

    text, messages, calls, requests = asyncio.run(main())
    assert text == "the value is fut_1" and requests == 2
    assert calls[0].error is not None and calls[0].deliveries == 1
    assert "backend down" in "".join(m.content for m in messages if isinstance(m.content, str))
