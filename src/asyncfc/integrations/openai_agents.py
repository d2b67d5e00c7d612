"""asyncfc tools as OpenAI Agents SDK function tools.

``AsyncFCTools(tools)`` builds one :class:`agents.FunctionTool` per asyncfc tool (plus
``await_future``) over one asyncfc runtime. Their schemas are the widened ones (a value
or a future reference) and therefore not strict; arguments are checked by asyncfc after
references are filled in, and problems reach the model as tool results. Add
``AsyncFCTools.instructions`` to the agent's instructions so the model knows what a
placeholder is.

:func:`run` is ``Runner.run`` plus the end of the user turn: pending calls are settled, and
the model gets one more run to see their values when its answer needs them.

``profile=`` (a :class:`~asyncfc.models.ModelProfile`, e.g. ``asyncfc.local.EMBEDDED_PROFILE``)
gives the agent what asyncfc's own ``Agent`` gives that model: its instructions join
``AsyncFCTools.instructions``, :func:`run` puts its worked example before a new conversation
(as input items), and a repeated identical call is answered from the earlier one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from agents import Agent, AgentBase, FunctionTool, RunConfig, RunContextWrapper, Runner, RunResult
from agents.items import TResponseInputItem
from agents.run_config import CallModelData, ModelInputData
from agents.tool_context import ToolContext

from ..model_text import ANSWER_NOW
from ..models.base import Message
from ..revise import HostedRun, settle_and_revise
from .hosted import HostedTools

__all__ = ["AsyncFCTools", "input_items", "run"]


class AsyncFCTools(HostedTools[FunctionTool]):
    """Agents SDK function tools over one asyncfc runtime (one conversation's futures).

    Give it asyncfc tools (it then owns its runtime; close it with ``await t.aclose()`` or
    ``async with``) or an existing ``runtime``. ``tools`` goes into ``Agent(tools=...)``.
    """

    def _framework_tool(self, spec: dict[str, Any]) -> FunctionTool:
        name = str(spec["name"])
        host = self.host

        async def invoke(ctx: ToolContext[Any], arguments: str) -> str:
            return await host.call(name, arguments, ctx.tool_call_id)

        def enabled(ctx: RunContextWrapper[Any], agent: AgentBase[Any]) -> bool:
            return not host.next_step()  # the last step only repeated calls: no tools, an answer

        return FunctionTool(
            name=name,
            description=str(spec.get("description") or ""),
            params_json_schema=dict(spec["parameters"]),
            on_invoke_tool=invoke,
            strict_json_schema=False,
            is_enabled=enabled,
        )


async def run(
    agent: Agent[Any],
    input: str | list[TResponseInputItem],
    tools: AsyncFCTools,
    **runner_options: Any,
) -> HostedRun[RunResult]:
    """``Runner.run(agent, input)``, then settle the user turn.

    ``agent`` must have ``tools.tools`` among its tools. A text ``input`` starts a
    conversation: the profile's example, if any, goes before it. Values still pending when the agent
    answers are awaited and delivered: to the model in one more run (a user message carries
    them) when the ``revise`` policy asks for it, otherwise only to the caller
    (``HostedRun.settled``); see :func:`asyncfc.revise.settle_and_revise`. After a model step
    made only of repeats (a profile that answers them), the next request carries
    ``ANSWER_NOW`` through the run config's ``call_model_input_filter``, unless
    ``run_config`` brings a filter of its own.
    """

    config = runner_options.get("run_config") or RunConfig()
    if config.call_model_input_filter is None:  # ANSWER_NOW after a step of repeats, that request only

        def answer_now(data: CallModelData[Any]) -> ModelInputData:
            if not tools.host.answer_now:
                return data.model_data
            asked: TResponseInputItem = {"role": "user", "content": ANSWER_NOW}
            return ModelInputData([*data.model_data.input, asked], data.model_data.instructions)

        runner_options["run_config"] = dataclasses.replace(config, call_model_input_filter=answer_now)

    async def again(result: RunResult, message: str) -> RunResult:
        follow_up: list[TResponseInputItem] = [*result.to_input_list(), {"role": "user", "content": message}]
        return await Runner.run(agent, follow_up, **runner_options)

    tools.host.start_turn()
    example = input_items(tools.host.example())
    if isinstance(input, str) and example:
        input = [*example, {"role": "user", "content": input}]
    result = await Runner.run(agent, input, **runner_options)
    return await settle_and_revise(tools.host, result, again, lambda r: str(r.final_output))


def input_items(messages: Sequence[Message]) -> list[TResponseInputItem]:
    """asyncfc messages (a profile's worked example) as Agents SDK input items."""
    items: list[Any] = []
    for m in messages:
        if m.role == "tool":
            items.append(
                {"type": "function_call_output", "call_id": m.tool_call_id or "", "output": m.content}
            )
            continue
        if m.content or not m.tool_calls:
            items.append({"role": m.role, "content": m.content})
        for tc in m.tool_calls:
            items.append(
                {"type": "function_call", "call_id": tc.id, "name": tc.name, "arguments": tc.arguments}
            )
    return items
