"""The framework integrations driven by a real model: the embedded Qwen2.5-Coder 1.5B
(llama-server, greedy and seeded) through PydanticAI, the OpenAI Agents SDK and LangGraph
with asyncfc's toolsets underneath, and through ``asyncfc mcp serve`` from PydanticAI's
and the Agents SDK's own MCP clients.

One simple task each: look up the weather of one city (slower than the grace window, so
the model gets a placeholder) and write it to a file. Each conversation gets the embedded
profile's instructions and worked example the way asyncfc's ``Agent`` sends them, put into
the framework's history here by the integration's own converter. Assertions are about what the model
reliably does at temperature 0: the final state (one lookup, one file), each call made
once, resolved and delivered once, and an answer that stands without a revision turn.
Run with `make test-llm`; a server the tests start is stopped at the end.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

if __name__ == "__main__":  # run as the MCP upstream: tests/ holds conftest
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asyncfc import Tool, local, tool  # noqa: E402
from asyncfc.integrations.hosted import HostedRuntime  # noqa: E402
from asyncfc.local.profile import EMBEDDED_PROFILE, example_messages  # noqa: E402
from asyncfc.models.base import Message  # noqa: E402
from asyncfc.revise import HostedRun  # noqa: E402
from asyncfc.scheduler import Call  # noqa: E402

pytestmark = [pytest.mark.llm, pytest.mark.timeout(900)]

TASK = "Call get_weather for Paris, then call write_file to write the weather it reports to weather.txt."
SYSTEM = (
    "You run errands with tools; use only values the tools give you. "
    "Once the file is written, reply with one short sentence and call no more tools."
)
STEPS = 6
"""At most this many model requests per run (a confused small model would otherwise loop)."""
WEATHER = {"paris": "sunny, 18 C", "tokyo": "rain, 12 C"}
LOOKUP_S = 0.5
"""Longer than the runtimes' grace window (0.2 s): the first answer is a placeholder."""
MAX_TOKENS = 256


def system_prompt(runtime_instructions: str) -> str:
    """What asyncfc's ``Agent`` sends this model: the task's prompt, the profile's, the runtime's."""
    return "\n\n".join(p for p in (SYSTEM, EMBEDDED_PROFILE.instructions, runtime_instructions) if p)


def example() -> list[Message]:
    """The embedded profile's worked example (async form), as asyncfc's ``Agent`` puts it before the task.

    It goes into the framework's history (``history_of``, ``input_items``, ``messages_of``):
    without it the 1.5B invents the weather and repeats calls, with any framework.
    """
    return list(example_messages(True))


def openai_agents_input(task: str) -> list[Any]:
    from asyncfc.integrations.openai_agents import input_items

    return [*input_items(example()), {"role": "user", "content": task}]


def langchain_messages(task: str) -> list[Any]:
    from langchain_core.messages import HumanMessage

    from asyncfc.integrations.langgraph import messages_of

    return [*messages_of(example()), HumanMessage(task)]


def pydantic_ai_history() -> list[Any]:
    from asyncfc.integrations.pydantic_ai import history_of

    return list(history_of(example()))


class Desk:
    """A slow weather lookup and a file writer; the files are the final state."""

    def __init__(self) -> None:
        self.lookups: list[str] = []
        self.files: dict[str, str] = {}

    def tools(self) -> list[Tool]:
        @tool(pure=True)
        async def get_weather(city: str) -> str:
            """Current weather of a city."""
            self.lookups.append(city)
            await asyncio.sleep(LOOKUP_S)
            return WEATHER.get(city.strip().lower(), "unknown city")

        @tool(writes=["files/{path}"])
        async def write_file(path: str, text: str) -> str:
            """Write text to a file (replacing it)."""
            self.files[path] = text
            return f"wrote {len(text)} characters to {path}"

        return [get_weather, write_file]


def check(desk: Desk, detail: Any) -> None:
    """The state the task must leave: one lookup of Paris, one file about Paris.

    Not its weather: through a framework the 1.5B writes the file in the step after the
    lookup's placeholder, and rather than passing ``fut_1`` on it writes a temperature of
    its own (measured: "sunny, 20 degrees" for "sunny, 18 C", in all four set-ups). A
    framework owns its history, so the value reaches the model only with the next tool
    result, after the file is written.
    """
    assert [c.strip().lower() for c in desk.lookups] == ["paris"], detail
    assert list(desk.files) == ["weather.txt"], detail
    assert "paris" in desk.files["weather.txt"].lower(), detail


def describe_calls(calls: Sequence[Call]) -> str:
    return "\n".join(f"  {c.id} {c.name}({c.raw_arguments}) -> {c.error or c.value!r}" for c in calls)


Go = Callable[[Desk, list[HostedRuntime]], Coroutine[Any, Any, HostedRun[Any]]]


def run_hosted(go: Go) -> None:
    """Run one framework turn over a fresh desk and check it; a failure shows every call made."""
    desk, hosts = Desk(), []
    try:
        out = asyncio.run(go(desk, hosts))
    except Exception as exc:  # e.g. the step limit: say what the model did
        calls = hosts[0].calls if hosts else []
        pytest.fail(f"{type(exc).__name__}: {exc}\n{describe_calls(calls)}\nfiles={desk.files}")
    gc.collect()  # a connection the run left open warns now, in this test, and fails it
    detail = f"answer={out.output!r} revisions={out.revisions}\n{describe_calls(out.calls)}"
    check(desk, detail)
    assert [c.name for c in out.calls] == ["get_weather", "write_file"], detail
    assert all(c.done and c.error is None and c.deliveries == 1 for c in out.calls), detail
    assert out.revisions == 0 and out.output, detail


# -- the toolsets ---------------------------------------------------------------------------


def test_pydantic_ai_toolset(llm_server: local.LocalServer) -> None:
    pytest.importorskip("pydantic_ai")
    from openai import AsyncOpenAI
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider
    from pydantic_ai.settings import ModelSettings
    from pydantic_ai.usage import UsageLimits

    from asyncfc.integrations.pydantic_ai import AsyncFCToolset, run

    async def go(desk: Desk, hosts: list[HostedRuntime]) -> HostedRun[Any]:
        async with AsyncOpenAI(base_url=llm_server.base_url, api_key="none") as client:
            model = OpenAIChatModel(llm_server.model, provider=OpenAIProvider(openai_client=client))
            settings = ModelSettings(temperature=0.0, seed=0, max_tokens=MAX_TOKENS)
            # hold_blind_writes=False: this test keeps the blind write it was written for (see check)
            async with AsyncFCToolset(desk.tools(), hold_blind_writes=False) as toolset:
                hosts.append(toolset.host)
                # the toolset's own instructions (the runtime's) reach the model as well
                agent = Agent(model, instructions=system_prompt(""), model_settings=settings)
                limits = UsageLimits(request_limit=STEPS)
                history = pydantic_ai_history()
                return await run(agent, TASK, toolset, message_history=history, usage_limits=limits)

    run_hosted(go)


def test_openai_agents_tools(llm_server: local.LocalServer) -> None:
    pytest.importorskip("agents")
    from agents import Agent, ModelSettings, OpenAIChatCompletionsModel, set_tracing_disabled
    from openai import AsyncOpenAI

    from asyncfc.integrations.openai_agents import AsyncFCTools, run

    set_tracing_disabled(True)

    async def go(desk: Desk, hosts: list[HostedRuntime]) -> HostedRun[Any]:
        async with (
            AsyncOpenAI(base_url=llm_server.base_url, api_key="none") as client,
            AsyncFCTools(desk.tools()) as fc,
        ):
            hosts.append(fc.host)
            agent = Agent(
                name="errands",
                instructions=system_prompt(fc.instructions),
                tools=list(fc.tools),
                model=OpenAIChatCompletionsModel(model=llm_server.model, openai_client=client),
                model_settings=ModelSettings(temperature=0.0, max_tokens=MAX_TOKENS, extra_args={"seed": 0}),
            )
            return await run(agent, openai_agents_input(TASK), fc, max_turns=STEPS)  # type: ignore[arg-type]

    run_hosted(go)


def test_langgraph_tools(llm_server: local.LocalServer) -> None:
    pytest.importorskip("langgraph")
    pytest.importorskip("langchain_openai")
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    from asyncfc.integrations.langgraph import AsyncFCTools, agent_graph, run

    async def go(desk: Desk, hosts: list[HostedRuntime]) -> HostedRun[Any]:
        async with httpx.AsyncClient() as http, AsyncFCTools(desk.tools()) as fc:
            hosts.append(fc.host)
            llm = ChatOpenAI(
                model=llm_server.model,
                base_url=llm_server.base_url,
                api_key=SecretStr("none"),
                temperature=0.0,
                seed=0,
                max_tokens=MAX_TOKENS,
                max_retries=0,
                http_async_client=http,  # closed here: ChatOpenAI never closes one it makes
            )
            graph = agent_graph(llm, fc.tools, system_prompt=system_prompt(fc.instructions))
            # a model step and a tool step per call: STEPS model requests at most
            return await run(graph, langchain_messages(TASK), fc, config={"recursion_limit": 2 * STEPS})

    run_hosted(go)


# -- a framework's own MCP client through asyncfc mcp serve ---------------------------------


def serve_upstream(state_path: str) -> None:
    """The desk's tools as an MCP server over stdio; the state is saved after each call."""
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    desk = Desk()
    mcp = MCPServer("desk", log_level="CRITICAL")

    def save() -> None:
        tmp = state_path + ".tmp"
        Path(tmp).write_text(json.dumps({"lookups": desk.lookups, "files": desk.files}))
        os.replace(tmp, state_path)

    for t in desk.tools():

        def wrapped(t: Tool = t) -> Any:
            import functools

            @functools.wraps(t.fn)
            async def call(**kwargs: Any) -> Any:
                try:
                    return await t.fn(**kwargs)
                finally:
                    save()

            return call

        mcp.tool(annotations=ToolAnnotations(read_only_hint=t.pure))(wrapped())
    mcp.run("stdio")


def proxy_command(tmp_path: Path) -> tuple[str, list[str], Path]:
    """``asyncfc mcp serve`` in front of this file's upstream (the write is per path, via annotations)."""
    state = tmp_path / "state.json"
    notes = tmp_path / "tools.toml"
    notes.write_text('[tools.write_file]\nreads = []\nwrites = ["files/{path}"]\n')
    upstream = f"{sys.executable} {Path(__file__).resolve()} upstream {state}"
    args = ["-m", "asyncfc.cli", "mcp", "serve", "--upstream", upstream, "--annotations", str(notes)]
    return sys.executable, args, state


def load(state: Path) -> Desk:
    desk = Desk()
    if state.exists():
        saved = json.loads(state.read_text())
        desk.lookups, desk.files = saved["lookups"], saved["files"]
    return desk


def test_pydantic_ai_mcp_client_through_the_proxy(llm_server: local.LocalServer, tmp_path: Path) -> None:
    pytest.importorskip("mcp")
    pytest.importorskip("fastmcp")
    from fastmcp.client.transports import StdioTransport
    from openai import AsyncOpenAI
    from pydantic_ai import Agent
    from pydantic_ai.mcp import MCPToolset
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider
    from pydantic_ai.settings import ModelSettings
    from pydantic_ai.usage import UsageLimits

    command, args, state = proxy_command(tmp_path)

    async def go() -> tuple[str, list[str]]:
        # the proxy's instructions explain placeholders to the model (include_instructions)
        toolset: MCPToolset[Any] = MCPToolset(
            StdioTransport(command, args, keep_alive=False), id="asyncfc", include_instructions=True
        )
        async with AsyncOpenAI(base_url=llm_server.base_url, api_key="none") as client, toolset:
            model = OpenAIChatModel(llm_server.model, provider=OpenAIProvider(openai_client=client))
            settings = ModelSettings(temperature=0.0, seed=0, max_tokens=MAX_TOKENS)
            agent = Agent(model, instructions=system_prompt(""), toolsets=[toolset], model_settings=settings)
            limits = UsageLimits(request_limit=STEPS)
            result = await agent.run(TASK, message_history=pydantic_ai_history(), usage_limits=limits)
            # settle before closing the session: every future of this session, each delivered once
            settled = await toolset.direct_call_tool("await_future", {"ids": ["fut_1", "fut_2"]})
            names = [
                p.tool_name for m in result.all_messages() for p in m.parts if p.part_kind == "tool-call"
            ]
            return f"{result.output!r} {names} settled={settled!r}", names

    try:
        detail, names = asyncio.run(go())
    except Exception as exc:  # e.g. the step limit: say what the tools saw
        desk = load(state)
        pytest.fail(f"{type(exc).__name__}: {exc}\nlookups={desk.lookups} files={desk.files}")
    check(load(state), detail)
    assert names.count("get_weather") == 1 and names.count("write_file") == 1, detail


if __name__ == "__main__":  # python tests/test_llm_integrations.py upstream STATE_PATH
    if len(sys.argv) == 3 and sys.argv[1] == "upstream":
        serve_upstream(sys.argv[2])
