"""asyncfc tools as a PydanticAI toolset.

``AsyncFCToolset(tools)`` lists the tools with the schemas the model must see (every
parameter also accepts a future reference, plus ``await_future``) and answers each call
through one asyncfc runtime: the value when it is ready within the grace window, else a
placeholder the model can pass on; values of earlier calls ride along with later tool
results. PydanticAI validates nothing itself here: asyncfc checks the arguments after
references are filled in and reports problems to the model as tool results.

:func:`run` is ``agent.run`` plus the end of the user turn: pending calls are settled, and
the model gets one more run to see their values when its answer needs them.

``profile=`` (a :class:`~asyncfc.models.ModelProfile`, e.g. ``asyncfc.local.EMBEDDED_PROFILE``)
gives the agent what asyncfc's own ``Agent`` gives that model: its instructions join the
toolset's, :func:`run` puts its worked example before a new conversation (as message
history), and a repeated identical call is answered from the earlier one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic_ai import Agent, RunContext
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.run import AgentRunResult
from pydantic_ai.tools import ToolDefinition
from pydantic_ai.toolsets import AbstractToolset, ToolsetTool
from pydantic_core import SchemaValidator, core_schema

from ..model_text import ANSWER_NOW
from ..models.base import Message, ModelProfile
from ..revise import HostedRun, Revise, settle_and_revise
from ..runtime import Runtime
from ..scheduler import Call
from ..tools import Tool
from .hosted import HostedRuntime

__all__ = ["AsyncFCToolset", "history_of", "run"]

_ANY_ARGS = SchemaValidator(core_schema.dict_schema(core_schema.str_schema(), core_schema.any_schema()))


class AsyncFCToolset(AbstractToolset[Any]):
    """A PydanticAI toolset over one asyncfc runtime (one conversation's futures).

    Give it asyncfc tools (it then owns its runtime; close it with ``await ts.aclose()``
    or ``async with``) or an existing ``runtime``. Its instructions (what a placeholder
    is, and a ``profile``'s) reach the model through PydanticAI's toolset instructions.
    ``revise`` and ``max_revisions`` are the policy of :func:`run` (see :mod:`asyncfc.revise`);
    ``profile`` is what the model needs (see :class:`~asyncfc.integrations.hosted.HostedRuntime`).
    """

    def __init__(
        self,
        tools: Sequence[Tool] | None = None,
        *,
        runtime: Runtime | None = None,
        id: str | None = "asyncfc",
        max_retries: int = 1,
        revise: Revise = "when_needed",
        max_revisions: int = 1,
        profile: ModelProfile | None = None,
        **runtime_options: Any,
    ) -> None:
        self.host = HostedRuntime(
            tools,
            runtime=runtime,
            revise=revise,
            max_revisions=max_revisions,
            profile=profile,
            **runtime_options,
        )
        self._id = id
        self.max_retries = max_retries

    @property
    def id(self) -> str | None:
        return self._id

    @property
    def runtime(self) -> Runtime:
        return self.host.runtime

    @property
    def calls(self) -> list[Call]:
        return self.host.calls

    async def get_instructions(self, ctx: RunContext[Any]) -> str | None:
        if self.host.next_step():  # the last step only repeated calls: ask for the answer
            return "\n\n".join(p for p in (self.host.instructions, ANSWER_NOW) if p)
        return self.host.instructions or None

    async def get_tools(self, ctx: RunContext[Any]) -> dict[str, ToolsetTool[Any]]:
        tools: dict[str, ToolsetTool[Any]] = {}
        if self.host.next_step():  # offered no tools, the model answers
            return tools
        for spec in self.host.tool_specs():
            tool_def = ToolDefinition(
                name=spec["name"],
                parameters_json_schema=spec["parameters"],
                description=spec.get("description"),
                strict=False,  # a widened schema (value or reference) is not strict-compatible
            )
            tools[spec["name"]] = ToolsetTool[Any](
                toolset=self, tool_def=tool_def, max_retries=self.max_retries, args_validator=_ANY_ARGS
            )
        return tools

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[Any], tool: ToolsetTool[Any]
    ) -> Any:
        return await self.host.call(name, tool_args, ctx.tool_call_id)

    async def aclose(self) -> None:
        """Close the runtime if this toolset created it (pending calls are cancelled)."""
        await self.host.aclose()


async def run(
    agent: Agent[Any, Any],
    prompt: str,
    toolset: AsyncFCToolset,
    *,
    message_history: Sequence[Any] | None = None,
    **run_options: Any,
) -> HostedRun[AgentRunResult[Any]]:
    """``agent.run(prompt, toolsets=[toolset])``, then settle the user turn.

    Without ``message_history`` (a new conversation), the toolset's profile example, if
    any, is the history the prompt follows.

    Values still pending when the agent answers are awaited and delivered: to the model in
    one more run (its user prompt carries them) when the toolset's ``revise`` policy asks
    for it, otherwise only to the caller (``HostedRun.settled``); see
    :func:`asyncfc.revise.settle_and_revise`.
    """

    async def again(result: AgentRunResult[Any], message: str) -> AgentRunResult[Any]:
        return await agent.run(
            message, message_history=result.all_messages(), toolsets=[toolset], **run_options
        )

    toolset.host.start_turn()
    history = message_history or history_of(toolset.host.example()) or None
    result = await agent.run(prompt, message_history=history, toolsets=[toolset], **run_options)
    return await settle_and_revise(toolset.host, result, again, lambda r: str(r.output))


def history_of(messages: Sequence[Message]) -> list[ModelMessage]:
    """asyncfc messages (a profile's worked example) as PydanticAI message history."""
    out: list[ModelMessage] = []
    names: dict[str, str] = {}
    for m in messages:
        if m.role == "tool":
            call_id = m.tool_call_id or ""
            part = ToolReturnPart(tool_name=names.get(call_id, ""), content=m.content, tool_call_id=call_id)
            out.append(ModelRequest(parts=[part]))
        elif m.role == "assistant":
            names.update({tc.id: tc.name for tc in m.tool_calls})
            parts: list[TextPart | ToolCallPart] = [TextPart(m.content)] if m.content else []
            parts += [ToolCallPart(tc.name, tc.arguments, tc.id) for tc in m.tool_calls]
            out.append(ModelResponse(parts=parts))
        else:
            out.append(ModelRequest(parts=[UserPromptPart(m.content)]))
    return out
