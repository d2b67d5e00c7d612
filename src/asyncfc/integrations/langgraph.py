"""asyncfc tools as LangChain tools, for LangGraph's ``ToolNode`` and agent graphs.

``AsyncFCTools(tools)`` builds one LangChain ``StructuredTool`` per asyncfc tool (plus
``await_future``) over one asyncfc runtime, with the widened JSON schemas (a value or a
future reference) as ``args_schema``; asyncfc checks the arguments after references are
filled in and reports problems to the model as tool results. The tools are async only
(``ainvoke``), which is what ``ToolNode`` uses inside an async graph.

:func:`agent_graph` is the usual model/``ToolNode`` loop with asyncfc's instructions in the
system message; :func:`run` is ``graph.ainvoke`` plus the end of the user turn: pending
calls are settled, and the model gets one more pass when its answer needs their values.

``profile=`` (a :class:`~asyncfc.models.ModelProfile`, e.g. ``asyncfc.local.EMBEDDED_PROFILE``)
gives the graph what asyncfc's own ``Agent`` gives that model: its instructions join
``AsyncFCTools.instructions``, :func:`run` puts its worked example before a new conversation
(as messages), and a repeated identical call is answered from the earlier one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from ..model_text import ANSWER_NOW
from ..models.base import Message
from ..revise import HostedRun, settle_and_revise
from .hosted import HostedTools

__all__ = ["AsyncFCTools", "agent_graph", "messages_of", "run"]


class AsyncFCTools(HostedTools[BaseTool]):
    """LangChain tools over one asyncfc runtime (one conversation's futures).

    Give it asyncfc tools (it then owns its runtime; close it with ``await t.aclose()`` or
    ``async with``) or an existing ``runtime``. ``tools`` goes into ``ToolNode(...)`` and
    ``model.bind_tools(...)``.
    """

    def _framework_tool(self, spec: dict[str, Any]) -> BaseTool:
        name = str(spec["name"])
        host = self.host

        async def invoke(**arguments: Any) -> str:
            return await host.call(name, arguments)

        return StructuredTool(
            name=name,
            description=str(spec.get("description") or name),
            args_schema=dict(spec["parameters"]),
            coroutine=invoke,
        )


def agent_graph(
    model: BaseChatModel, tools: Sequence[BaseTool] | AsyncFCTools, *, system_prompt: str | None = None
) -> Any:
    """A compiled model -> ``ToolNode`` -> model loop (``create_react_agent``'s shape, no extras).

    ``system_prompt`` (e.g. ``AsyncFCTools.instructions``) is prepended to every request.
    The graph's state is LangGraph's ``MessagesState``. Given the :class:`AsyncFCTools`
    themselves, the system prompt defaults to their instructions, and after a model step
    made only of repeated calls (a profile that answers repeats) the next request is sent
    without tools and with ``ANSWER_NOW``, so the model answers instead of looping.
    """
    host = tools.host if isinstance(tools, AsyncFCTools) else None
    if isinstance(tools, AsyncFCTools):
        system_prompt = tools.instructions if system_prompt is None else system_prompt
        tools = tools.tools
    bound = model.bind_tools(list(tools))
    system = [SystemMessage(system_prompt)] if system_prompt else []

    async def call_model(state: MessagesState) -> dict[str, list[BaseMessage]]:
        if host is not None and host.next_step():  # this request only: no tools, asked to answer
            return {
                "messages": [await model.ainvoke([*system, *state["messages"], HumanMessage(ANSWER_NOW)])]
            }
        return {"messages": [await bound.ainvoke([*system, *state["messages"]])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", call_model)
    graph.add_node("tools", ToolNode(list(tools)))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


def _answer(messages: Sequence[AnyMessage]) -> str:
    return messages[-1].text if messages else ""


async def run(
    graph: Any,
    messages: str | Sequence[AnyMessage],
    tools: AsyncFCTools,
    **invoke_options: Any,
) -> HostedRun[dict[str, Any]]:
    """``graph.ainvoke({"messages": ...})``, then settle the user turn.

    ``graph`` is any compiled graph over ``MessagesState`` that runs ``tools.tools``. A text
    ``messages`` starts a conversation: the profile's example, if any, goes before it.
    Values still pending when the model answers are awaited and delivered: to the model in
    one more pass (a human message carries them) when the ``revise`` policy asks for it,
    otherwise only to the caller (``HostedRun.settled``); see
    :func:`asyncfc.revise.settle_and_revise`.
    """

    async def again(state: dict[str, Any], message: str) -> dict[str, Any]:
        follow_up = [*state["messages"], HumanMessage(message)]
        return dict(await graph.ainvoke({"messages": follow_up}, **invoke_options))

    tools.host.start_turn()
    if isinstance(messages, str):
        first = [*messages_of(tools.host.example()), HumanMessage(messages)]
    else:
        first = list(messages)
    state: dict[str, Any] = await graph.ainvoke({"messages": first}, **invoke_options)
    return await settle_and_revise(tools.host, state, again, lambda s: _answer(s["messages"]))


def messages_of(messages: Sequence[Message]) -> list[AnyMessage]:
    """asyncfc messages (a profile's worked example) as LangChain messages."""
    out: list[AnyMessage] = []
    for m in messages:
        if m.role == "tool":
            out.append(ToolMessage(m.content, tool_call_id=m.tool_call_id or ""))
        elif m.role == "assistant":
            calls = [
                {"name": tc.name, "args": json.loads(tc.arguments or "{}"), "id": tc.id}
                for tc in m.tool_calls
            ]
            out.append(AIMessage(m.content, tool_calls=calls))
        else:
            out.append(HumanMessage(m.content))
    return out
