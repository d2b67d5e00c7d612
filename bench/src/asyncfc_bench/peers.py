"""``asyncfc bench peers``: asyncfc next to the agent frameworks people already run.

Every system drives the same workload against the same simulated-decode server (one per
workload, real HTTP, OpenAI chat completions) and the same tool functions:

* ``asyncfc-sync``, ``asyncfc-parallel``, ``asyncfc-async``: asyncfc's own ``Agent``;
* ``pydantic-ai``, ``openai-agents``, ``langgraph``: the framework alone, given the plain
  tool functions (each runs the calls of one response concurrently);
* ``<framework>+asyncfc``: the framework with asyncfc's toolset underneath
  (:mod:`asyncfc.integrations`), settled at the end of the run;
* ``<framework>+asyncfc-mcp``: the framework's own MCP client (PydanticAI's ``MCPToolset``,
  the Agents SDK's ``MCPServerStdio``) talking to ``asyncfc mcp serve`` in front of an MCP
  server with the same tools (reported as unavailable, with the reason, where the proxy or
  the framework's MCP client is missing or broken: LangGraph's, langchain-mcp-adapters,
  does not work with mcp 2).

The scripted model is a function of the conversation, like a real one: it emits the next
calls from how many it has made so far, and passes an earlier result as a future reference
when it saw a placeholder, as the value when it saw the value. So systems without futures
see values and systems with futures pass references, from one script. Runs are
interleaved (every round runs every system, in a rotated order) so that noise hits all
alike; the tools log what they were called with and returned, and every system must
produce the same log and final state.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import importlib.util
import json
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from asyncfc.cli.options import non_negative_float, positive_int
from asyncfc.models.base import Message
from asyncfc.testing.scripted import Ref, ScriptedCall, TurnSpec, call_results, tokens_of
from asyncfc.testing.simserver import SimServer
from asyncfc.tools import Tool, tool

__all__ = [
    "BASELINE",
    "Cleanup",
    "DEFAULT_GRACE_S",
    "FRAMEWORKS",
    "LANGCHAIN_MCP_UNAVAILABLE",
    "Outcome",
    "PeerWorkload",
    "Runner",
    "SYSTEMS",
    "State",
    "Unavailable",
    "WORKLOADS",
    "add_parser",
    "cmd_peers",
    "format_rows",
    "run_peers",
    "serve_upstream",
    "tiny_workloads",
]

FRAMEWORKS = ("pydantic-ai", "openai-agents", "langgraph")
SYSTEMS: tuple[str, ...] = (
    "asyncfc-sync",
    "asyncfc-parallel",
    "asyncfc-async",
    *(f"{f}{suffix}" for f in FRAMEWORKS for suffix in ("", "+asyncfc", "+asyncfc-mcp")),
)
BASELINE = "asyncfc-sync"
DEFAULT_GRACE_S = 0.01
"""Grace window of the asyncfc runtimes in this benchmark: far below the tools' latency, so a
slow call is answered with a placeholder at once (the runtime's default waits longer)."""

_PROMPT = "Run the {name} workload."
_SCRIPT_LENGTH = 50_000
"""Script positions of one server; the turn function is stateless, so any run may use any."""


@dataclass
class State:
    """What the tools of one run did: a log of (tool, arguments, result) and the final state."""

    log: list[tuple[str, str, Any]] = field(default_factory=list)
    store: dict[str, Any] = field(default_factory=dict)

    def record(self, name: str, arguments: dict[str, Any], value: Any) -> Any:
        self.log.append((name, json.dumps(arguments, sort_keys=True), value))
        return value

    def fingerprint(self) -> Any:
        return sorted(self.log, key=repr), json.dumps(self.store, sort_keys=True)


@dataclass(frozen=True)
class PeerWorkload:
    """One workload: its tools, its script (a function of the transcript) and its server's pacing.

    ``chains``: ``chains`` independent chains of ``length`` dependent calls (``delay_s``
    each), one level of every chain per model response, decoded at ``decode_s`` per call.
    ``sequential``: one call per model response (``response_s`` each): ``lookups`` lookups
    (``lookup_s``), then one order per lookup (``order_s``) that uses its price.
    """

    name: str
    shape: Literal["chains", "sequential"]
    chains: int = 4
    length: int = 3
    delay_s: float = 0.2
    decode_s: float = 0.05
    lookups: int = 3
    lookup_s: float = 0.5
    order_s: float = 0.5
    response_s: float = 0.3

    @property
    def calls(self) -> int:
        return self.chains * self.length if self.shape == "chains" else 2 * self.lookups

    @property
    def prompt(self) -> str:
        return _PROMPT.format(name=self.name)

    def turn(self, transcript: Sequence[Message]) -> TurnSpec:
        """The next model response, from the number of calls already made."""
        made = len(call_results(transcript))
        if self.shape == "chains":
            level = made // self.chains
            if level >= self.length:
                return "All chains are complete."
            return [
                ScriptedCall(
                    "step",
                    {
                        "chain": c,
                        "index": level,
                        "previous": Ref((level - 1) * self.chains + c + 1) if level else 0,
                    },
                )
                for c in range(self.chains)
            ]
        if made < self.lookups:
            return [ScriptedCall("lookup", {"item": f"item-{made}"})]
        if made < 2 * self.lookups:
            k = made - self.lookups
            return [
                ScriptedCall("place_order", {"item": f"item-{k}", "price": Ref(k + 1), "quantity": k + 1})
            ]
        return "All orders are placed."

    def server(self) -> SimServer:
        """The simulated-decode server every system of this workload talks to."""
        turns = [self.turn] * _SCRIPT_LENGTH
        if self.shape == "chains":
            if self.decode_s <= 0:
                return SimServer(turns)
            first = json.dumps({"chain": 0, "index": 0, "previous": 0})
            return SimServer(turns, tokens_per_s=tokens_of("step" + first) / self.decode_s)
        return SimServer(turns, ttft_s=self.response_s)

    def tools(self, state: State) -> list[Tool]:
        """Fresh asyncfc tools over ``state``; frameworks alone get their plain functions (``.fn``)."""
        if self.shape == "chains":
            delay = self.delay_s

            @tool(reads=[], writes=["chains/{chain}"])
            async def step(chain: int, index: int, previous: int) -> int:
                """Advance one chain by one step; the result depends on the previous step's result."""
                await _sleep(delay)
                value = (previous * 31 + chain * 7 + index + 1) % 1_000_003
                state.store.setdefault(str(chain), []).append(value)
                return int(
                    state.record("step", {"chain": chain, "index": index, "previous": previous}, value)
                )

            return [step]
        lookup_s, order_s = self.lookup_s, self.order_s

        @tool(pure=True)
        async def lookup(item: str) -> float:
            """Look up the current unit price of an item."""
            await _sleep(lookup_s)
            price = float(10 + sum(map(ord, item)) % 17)
            return float(state.record("lookup", {"item": item}, price))

        @tool(reads=[], writes=["orders/{item}"])
        async def place_order(item: str, price: float, quantity: int) -> str:
            """Order a quantity of an item at the given unit price; returns the order id."""
            await _sleep(order_s)
            state.store[item] = {"price": price, "quantity": quantity, "total": round(price * quantity, 2)}
            order = f"order-{item}-{quantity}"
            return str(
                state.record("place_order", {"item": item, "price": price, "quantity": quantity}, order)
            )

        return [lookup, place_order]


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds if seconds > 0 else 0)


WORKLOADS: dict[str, PeerWorkload] = {
    "chains": PeerWorkload("chains", "chains"),
    "sequential": PeerWorkload("sequential", "sequential"),
    "overhead": PeerWorkload("overhead", "chains", chains=4, length=5, delay_s=0.0, decode_s=0.0),
}


def tiny_workloads() -> dict[str, PeerWorkload]:
    """The same shapes scaled down (tests)."""
    return {
        "chains": PeerWorkload("chains", "chains", chains=2, length=2, delay_s=0.06, decode_s=0.01),
        "sequential": PeerWorkload(
            "sequential", "sequential", lookups=2, lookup_s=0.08, order_s=0.08, response_s=0.03
        ),
        "overhead": PeerWorkload("overhead", "chains", chains=2, length=2, delay_s=0.0, decode_s=0.0),
    }


# -- systems ------------------------------------------------------------------------------


@dataclass
class Outcome:
    answer: str
    delivered_once: bool | None = None
    """Every call delivered exactly once (systems with an asyncfc runtime only)."""
    revisions: int = 0


Runner = Callable[[], Awaitable[Outcome]]
Cleanup = Callable[[], Awaitable[None]]


class Unavailable(Exception):
    """A system cannot run here (a framework or the MCP proxy is not installed)."""


def _once(calls: Sequence[Any]) -> bool:
    return all(c.deliveries == 1 and c.done for c in calls)


def _needs(*modules: str) -> None:
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise Unavailable(
                f"{module} is not installed (pip install 'asyncfc[{_EXTRA.get(module, module)}]')"
            )


_EXTRA = {"pydantic_ai": "pydantic-ai", "agents": "openai-agents", "langgraph": "langgraph"}


async def _prepare(
    system: str, workload: PeerWorkload, server: SimServer, state: State, grace_s: float
) -> tuple[Runner, Cleanup]:
    """Build one system (untimed): a coroutine that runs the user turn, and its cleanup."""
    tools = workload.tools(state)
    prompt = workload.prompt
    if system.endswith("+asyncfc-mcp"):
        framework = system.partition("+")[0]
        _needs_mcp_client(framework)
        prepare = {"pydantic-ai": _prepare_pydantic_ai_mcp, "openai-agents": _prepare_openai_agents_mcp}
        return await prepare[framework](workload, server, state, grace_s)
    if system.startswith("asyncfc-"):
        return _prepare_asyncfc(system.removeprefix("asyncfc-"), tools, prompt, server, grace_s)
    framework, _, under = system.partition("+")
    if framework == "pydantic-ai":
        _needs("pydantic_ai")
        return _prepare_pydantic_ai(tools, prompt, server, grace_s if under else None)
    if framework == "openai-agents":
        _needs("agents")
        return _prepare_openai_agents(tools, prompt, server, grace_s if under else None)
    if framework == "langgraph":
        _needs("langgraph", "langchain_openai")
        return _prepare_langgraph(tools, prompt, server, grace_s if under else None)
    raise ValueError(f"unknown system {system!r}")


LANGCHAIN_MCP_UNAVAILABLE = (
    "it does not work with mcp 2.x: langchain-mcp-adapters 0.3.2 requires mcp<2, "
    "and 0.3.1, the newest that installs beside mcp 2.3, fails at import "
    "(from mcp.server.fastmcp.tools import Tool: mcp 2 renamed FastMCP to MCPServer)"
)
"""Why ``langgraph+asyncfc-mcp`` is unavailable while the proxy needs mcp 2 (checked with mcp 2.3.0)."""


def _needs_mcp_client(framework: str) -> None:
    """Raise :class:`Unavailable` unless the proxy and ``framework``'s own MCP client can run here."""
    if importlib.util.find_spec("mcp") is None:
        raise Unavailable("the asyncfc MCP proxy needs the mcp package (pip install 'asyncfc[mcp]')")
    if framework == "openai-agents":
        _needs("agents")
        return
    if framework == "pydantic-ai":
        _needs("pydantic_ai")
        try:
            import pydantic_ai.mcp  # noqa: F401  (needs fastmcp)
        except ImportError as exc:
            raise Unavailable(
                f"PydanticAI's MCP client needs fastmcp (pip install 'asyncfc[pydantic-ai]'): {exc}"
            ) from None
        return
    _needs("langgraph", "langchain_openai")
    if importlib.util.find_spec("langchain_mcp_adapters") is None:
        raise Unavailable(
            f"LangGraph's MCP client, langchain-mcp-adapters, is not installed: {LANGCHAIN_MCP_UNAVAILABLE}"
        )
    try:
        importlib.import_module("langchain_mcp_adapters.tools")
    except ImportError as exc:
        raise Unavailable(f"langchain-mcp-adapters does not import here ({exc})") from None
    raise Unavailable(
        "langchain-mcp-adapters imports here, but this benchmark drives it only once it works with mcp 2"
    )


def _prepare_asyncfc(
    mode: str, tools: list[Tool], prompt: str, server: SimServer, grace_s: float
) -> tuple[Runner, Cleanup]:
    import inspect

    from asyncfc.agent import Agent
    from asyncfc.models.openai_chat import OpenAIChatModel

    model = OpenAIChatModel("sim-model", base_url=server.base_url, api_key="x")
    options: dict[str, Any] = {}
    if "grace_s" in inspect.signature(Agent).parameters:
        options["grace_s"] = grace_s
    agent = Agent(model, tools, mode=mode, max_steps=100, **options)

    async def go() -> Outcome:
        result = await agent.run(prompt)
        return Outcome(result.text, _once(result.calls) if mode == "async" else None)

    return go, model.aclose


def _openai_client(server: SimServer) -> Any:
    from openai import AsyncOpenAI

    return AsyncOpenAI(base_url=server.base_url, api_key="x")


def _prepare_pydantic_ai(
    tools: list[Tool], prompt: str, server: SimServer, grace_s: float | None
) -> tuple[Runner, Cleanup]:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider
    from pydantic_ai.usage import UsageLimits

    client = _openai_client(server)
    model = OpenAIChatModel("sim-model", provider=OpenAIProvider(openai_client=client))
    limits = UsageLimits(request_limit=100)
    if grace_s is None:
        plain = Agent(model, tools=[t.fn for t in tools])

        async def alone() -> Outcome:
            result = await plain.run(prompt, usage_limits=limits)
            return Outcome(str(result.output))

        return alone, client.close

    from asyncfc.integrations.pydantic_ai import AsyncFCToolset, run

    toolset = AsyncFCToolset(tools, grace_s=grace_s)
    agent = Agent(model)

    async def hosted() -> Outcome:
        out = await run(agent, prompt, toolset, usage_limits=limits)
        return Outcome(out.output, _once(out.calls), out.revisions)

    async def cleanup() -> None:
        await toolset.aclose()
        await client.close()

    return hosted, cleanup


def _prepare_openai_agents(
    tools: list[Tool], prompt: str, server: SimServer, grace_s: float | None
) -> tuple[Runner, Cleanup]:
    from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)  # it would export traces to OpenAI
    client = _openai_client(server)
    model = OpenAIChatCompletionsModel(model="sim-model", openai_client=client)
    if grace_s is None:
        plain = Agent(
            name="peers",
            instructions="Use the tools.",
            tools=[function_tool(t.fn) for t in tools],
            model=model,
        )

        async def alone() -> Outcome:
            result = await Runner.run(plain, prompt, max_turns=100)
            return Outcome(str(result.final_output))

        return alone, client.close

    from asyncfc.integrations.openai_agents import AsyncFCTools, run

    fc = AsyncFCTools(tools, grace_s=grace_s)
    agent = Agent(
        name="peers", instructions="Use the tools.\n\n" + fc.instructions, tools=list(fc.tools), model=model
    )

    async def hosted() -> Outcome:
        out = await run(agent, prompt, fc, max_turns=100)
        return Outcome(out.output, _once(out.calls), out.revisions)

    async def cleanup() -> None:
        await fc.aclose()
        await client.close()

    return hosted, cleanup


@dataclass
class _Proxy:
    """``asyncfc mcp serve`` in front of an MCP server with one workload's tools (both over stdio).

    ``command`` and ``args`` start the proxy; the upstream writes its state to ``state_path``
    after each call, read back into the run's :class:`State` by :meth:`close`.
    """

    command: str
    args: list[str]
    folder: str
    state_path: str

    @classmethod
    def for_workload(cls, workload: PeerWorkload, grace_s: float) -> _Proxy:
        import os
        import tempfile

        folder = tempfile.mkdtemp(prefix="asyncfc-peers-")
        state_path, notes = os.path.join(folder, "state.json"), os.path.join(folder, "tools.toml")
        _write(notes, _ANNOTATIONS[workload.shape])
        upstream = (
            f"{sys.executable} -m asyncfc_bench.peers upstream '{json.dumps(asdict(workload))}' {state_path}"
        )
        args = ["-m", "asyncfc.cli", "mcp", "serve", "--upstream", upstream, "--annotations", notes]
        return cls(sys.executable, [*args, "--grace", str(grace_s)], folder, state_path)

    @staticmethod
    def every_future(workload: PeerWorkload) -> dict[str, Any]:
        """``await_future`` arguments over every call of the run (a host settles so before closing)."""
        return {"ids": [f"fut_{i + 1}" for i in range(workload.calls)]}

    def cleanup(self, stack: AsyncExitStack, client: Any, state: State) -> Cleanup:
        """What ends a framework's run through the proxy: its MCP client (``stack``), its
        model client, then the proxy's folder, whose saved state goes into ``state``."""

        async def cleanup() -> None:
            try:
                await stack.aclose()
                await client.close()
            finally:
                self.close(state)

        return cleanup

    def close(self, state: State) -> None:
        import shutil

        _load_state(self.state_path, state)
        shutil.rmtree(self.folder, ignore_errors=True)


async def _prepare_openai_agents_mcp(
    workload: PeerWorkload, server: SimServer, state: State, grace_s: float
) -> tuple[Runner, Cleanup]:
    """The Agents SDK's own MCP client -> ``asyncfc mcp serve`` -> an MCP server with the tools.

    Both processes start here (untimed). The host cannot settle the proxy's futures itself,
    so the run ends with one ``await_future`` call over every id, as a host would before
    closing; the upstream writes its state to a file after each call.
    """
    from agents import Agent, OpenAIChatCompletionsModel, Runner, set_tracing_disabled
    from agents.mcp import MCPServerStdio

    set_tracing_disabled(True)
    proxy = _Proxy.for_workload(workload, grace_s)
    params: Any = {"command": proxy.command, "args": proxy.args}
    stack = AsyncExitStack()
    mcp = await stack.enter_async_context(
        MCPServerStdio(params=params, cache_tools_list=True, client_session_timeout_seconds=60)
    )
    client = _openai_client(server)
    model = OpenAIChatCompletionsModel(model="sim-model", openai_client=client)
    agent = Agent(name="peers", instructions="Use the tools.", mcp_servers=[mcp], model=model)

    async def go() -> Outcome:
        result = await Runner.run(agent, workload.prompt, max_turns=100)
        await mcp.call_tool("await_future", _Proxy.every_future(workload))
        return Outcome(str(result.final_output))

    return go, proxy.cleanup(stack, client, state)


async def _prepare_pydantic_ai_mcp(
    workload: PeerWorkload, server: SimServer, state: State, grace_s: float
) -> tuple[Runner, Cleanup]:
    """PydanticAI's own MCP client (``MCPToolset``, FastMCP's client) -> ``asyncfc mcp serve`` -> the tools.

    As for the Agents SDK: both processes start here (untimed), the toolset stays connected
    (one MCP session, so one set of futures) across the run and the final ``await_future``.
    """
    from fastmcp.client.transports import StdioTransport
    from pydantic_ai import Agent
    from pydantic_ai.mcp import MCPToolset
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider
    from pydantic_ai.usage import UsageLimits

    proxy = _Proxy.for_workload(workload, grace_s)
    transport = StdioTransport(proxy.command, proxy.args, keep_alive=False)
    toolset: MCPToolset[Any] = MCPToolset(transport, id="asyncfc", include_instructions=True, init_timeout=60)
    stack = AsyncExitStack()
    await stack.enter_async_context(toolset)
    client = _openai_client(server)
    model = OpenAIChatModel("sim-model", provider=OpenAIProvider(openai_client=client))
    agent = Agent(model, toolsets=[toolset])
    limits = UsageLimits(request_limit=100)

    async def go() -> Outcome:
        result = await agent.run(workload.prompt, usage_limits=limits)
        await toolset.direct_call_tool("await_future", _Proxy.every_future(workload))
        return Outcome(str(result.output))

    return go, proxy.cleanup(stack, client, state)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _load_state(path: str, state: State) -> None:
    """The upstream's last saved state, as the in-process tools would have left it."""
    try:
        with open(path) as f:
            saved = json.load(f)
    except FileNotFoundError:
        return
    state.log[:] = [(str(name), str(args), value) for name, args, value in saved["log"]]
    state.store.update(saved["store"])


_ANNOTATIONS = {
    "chains": '[tools.step]\nreads = []\nwrites = ["chains/{chain}"]\n',
    "sequential": '[tools.lookup]\npure = true\n\n[tools.place_order]\nreads = []\nwrites = ["orders/{item}"]\n',
}
"""The proxy's annotations file per workload: the read/write sets the asyncfc tools declare."""


def _prepare_langgraph(
    tools: list[Tool], prompt: str, server: SimServer, grace_s: float | None
) -> tuple[Runner, Cleanup]:
    from langchain_core.messages import HumanMessage
    from langchain_core.tools import StructuredTool
    from langchain_openai import ChatOpenAI

    from asyncfc.integrations.langgraph import AsyncFCTools, agent_graph, run

    llm = ChatOpenAI(model="sim-model", base_url=server.base_url, api_key=_secret("x"), max_retries=0)
    config = {"recursion_limit": 200}
    if grace_s is None:
        plain = [
            StructuredTool.from_function(coroutine=t.fn, name=t.name, description=t.description)
            for t in tools
        ]
        graph = agent_graph(llm, plain)

        async def alone() -> Outcome:
            state = await graph.ainvoke({"messages": [HumanMessage(prompt)]}, config)
            return Outcome(str(state["messages"][-1].text))

        return alone, _nothing

    fc = AsyncFCTools(tools, grace_s=grace_s)
    hosted_graph = agent_graph(llm, fc.tools, system_prompt=fc.instructions)

    async def hosted() -> Outcome:
        out = await run(hosted_graph, prompt, fc, config=config)
        return Outcome(out.output, _once(out.calls), out.revisions)

    return hosted, fc.aclose


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)


async def _nothing() -> None:
    return None


# -- the benchmark ------------------------------------------------------------------------


@dataclass
class _Sample:
    wall_s: float
    cpu_s: float
    requests: int
    outcome: Outcome
    fingerprint: Any


async def _run_one(system: str, workload: PeerWorkload, server: SimServer, grace_s: float) -> _Sample:
    state = State()
    go, cleanup = await _prepare(system, workload, server, state, grace_s)
    try:
        gc.collect()
        requests = len(server.model_requests)
        cpu0, t0 = time.thread_time(), time.perf_counter()
        outcome = await go()
        wall, cpu = time.perf_counter() - t0, time.thread_time() - cpu0
        requests = len(server.model_requests) - requests
    finally:
        await cleanup()
    return _Sample(wall, cpu, requests, outcome, state.fingerprint())


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in (
        "asyncfc",
        "openai",
        "pydantic",
        "pydantic-ai-slim",
        "openai-agents",
        "langgraph",
        "langgraph-prebuilt",
        "langchain-core",
        "langchain-openai",
        "mcp",
        "fastmcp-slim",
        "langchain-mcp-adapters",
    ):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


async def run_peers(
    workloads: dict[str, PeerWorkload] | None = None,
    systems: Sequence[str] = SYSTEMS,
    *,
    repeats: int = 3,
    warmup: bool = True,
    grace_s: float = DEFAULT_GRACE_S,
) -> dict[str, Any]:
    """Run every system on every workload ``repeats`` times, interleaved; medians and checks."""
    workloads = dict(workloads or WORKLOADS)
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown system(s) {unknown}; known: {', '.join(SYSTEMS)}")
    servers = {name: w.server().start() for name, w in workloads.items()}
    unavailable: dict[str, str] = {}
    samples: dict[str, dict[str, list[_Sample]]] = {w: {s: [] for s in systems} for w in workloads}
    errors: dict[str, dict[str, str]] = {w: {} for w in workloads}
    try:
        if warmup:  # imports, first connections, lazily built schemas: out of the measurement
            tiny = tiny_workloads()["overhead"]
            with tiny.server() as srv:
                for system in systems:
                    try:
                        await _run_one(system, tiny, srv, grace_s)
                    except Unavailable as exc:
                        unavailable[system] = str(exc)
        for rnd in range(repeats):
            order = [s for s in systems if s not in unavailable]
            shift = rnd % len(order) if order else 0
            order = order[shift:] + order[:shift]
            for name, workload in workloads.items():
                for system in order:
                    if system in unavailable or system in errors[name]:
                        continue
                    try:
                        samples[name][system].append(await _run_one(system, workload, servers[name], grace_s))
                    except Unavailable as exc:
                        unavailable[system] = str(exc)
                    except Exception as exc:  # one broken system must not hide the others' numbers
                        errors[name][system] = f"{type(exc).__name__}: {exc}"
    finally:
        for srv in servers.values():
            srv.stop()
    out: dict[str, Any] = {
        "workloads": {},
        "versions": _versions(),
        "repeats": repeats,
        "grace_s": grace_s,
        "timing": "wall_s is the median over repeats of one user turn (run + settle); cpu_us_per_call is "
        "the event-loop thread's CPU time (client side: framework, SDK, asyncfc) per tool call",
    }
    for name, workload in workloads.items():
        out["workloads"][name] = _summarise(workload, systems, samples[name], unavailable, errors[name])
    out["identical"] = all(w["identical"] for w in out["workloads"].values())
    return out


def _summarise(
    workload: PeerWorkload,
    systems: Sequence[str],
    samples: dict[str, list[_Sample]],
    unavailable: dict[str, str],
    errors: dict[str, str],
) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    prints: list[Any] = []
    for system in systems:
        runs = samples[system]
        if not runs:
            reason = unavailable.get(system) or errors.get(system) or "not run"
            rows[system] = {
                "available": system not in unavailable,
                "reason": reason,
                "wall_s": None,
                "speedup_vs_sync": None,
                "cpu_us_per_call": None,
            }
            continue
        walls = [s.wall_s for s in runs]
        calls = len(runs[0].fingerprint[0])
        rows[system] = {
            "wall_s": round(statistics.median(walls), 4),
            "walls_s": [round(w, 4) for w in walls],
            "speedup_vs_sync": None,
            "cpu_us_per_call": round(1e6 * statistics.median(s.cpu_s for s in runs) / max(calls, 1), 1),
            "calls": calls,
            "model_requests": runs[0].requests,
            "delivered_once": None
            if runs[0].outcome.delivered_once is None
            else all(bool(s.outcome.delivered_once) for s in runs),
            "revisions": max(s.outcome.revisions for s in runs),
        }
        if system in errors:
            rows[system]["error"] = errors[system]
        prints.extend(s.fingerprint for s in runs)
    base = rows.get(BASELINE, {}).get("wall_s")
    for row in rows.values():
        if base and row.get("wall_s"):
            row["speedup_vs_sync"] = round(base / row["wall_s"], 3)
    complete = all(len(p[0]) == workload.calls for p in prints)
    identical = bool(prints) and complete and all(p == prints[0] for p in prints) and not errors
    identical = identical and all(r.get("delivered_once") is not False for r in rows.values())
    gains: dict[str, dict[str, float | None]] = {}
    for framework in FRAMEWORKS:
        alone = rows.get(framework, {}).get("wall_s")
        gains[framework] = {
            under: round(alone / w, 3)
            if alone and (w := rows.get(f"{framework}+{under}", {}).get("wall_s"))
            else None
            for under in ("asyncfc", "asyncfc-mcp")
        }
    return {
        "config": asdict(workload),
        "systems": rows,
        "identical": identical,
        "gain_over_framework": gains,
    }


def format_rows(data: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(workload, system, wall, speedup, cpu/call, note) rows for the CLI's table."""
    rows: list[tuple[str, str, str, str, str, str]] = []
    for name, w in data["workloads"].items():
        for system, r in w["systems"].items():
            if r.get("wall_s") is None:
                rows.append((name, system, "-", "-", "-", str(r.get("reason", ""))))
                continue
            note = "" if w["identical"] else "results differ"
            rows.append(
                (
                    name,
                    system,
                    f"{r['wall_s']:.3f}",
                    f"{r['speedup_vs_sync']:.2f}x" if r["speedup_vs_sync"] else "-",
                    f"{r['cpu_us_per_call']:.0f}",
                    note,
                )
            )
    return rows


# -- command line -------------------------------------------------------------------------


def _names(known: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        bad = [n for n in names if n not in known]
        if bad or not names:
            raise argparse.ArgumentTypeError(
                f"unknown: {', '.join(bad) or '(none)'} (known: {', '.join(known)})"
            )
        return names

    return parse


def add_parser(bench: Any) -> None:
    """Register ``asyncfc bench peers`` on the ``bench`` subparsers."""
    p = bench.add_parser("peers", help="asyncfc next to PydanticAI, the OpenAI Agents SDK and LangGraph")
    p.add_argument(
        "--workloads", type=_names(list(WORKLOADS)), default=list(WORKLOADS), help="comma-separated workloads"
    )
    p.add_argument("--systems", type=_names(SYSTEMS), default=list(SYSTEMS), help="comma-separated systems")
    p.add_argument(
        "--repeats", type=positive_int, default=3, help="interleaved rounds; medians are reported (default 3)"
    )
    p.add_argument(
        "--grace",
        type=non_negative_float,
        default=DEFAULT_GRACE_S,
        help=f"asyncfc grace window, s (default {DEFAULT_GRACE_S})",
    )
    p.add_argument("--tiny", action="store_true", help="scaled-down workloads (a smoke test)")
    p.add_argument("--no-warmup", action="store_true", help="skip the unmeasured warm-up round")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_peers)


def cmd_peers(args: argparse.Namespace) -> int:
    """Exit 1 when the systems disagree on results or state, or a value was not delivered once."""
    from rich.console import Console
    from rich.table import Table

    pool = tiny_workloads() if args.tiny else WORKLOADS
    workloads = {name: pool[name] for name in args.workloads}
    console = Console(stderr=True)
    with console.status("running every system on every workload ..."):
        data = asyncio.run(
            run_peers(
                workloads, args.systems, repeats=args.repeats, warmup=not args.no_warmup, grace_s=args.grace
            )
        )
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return 0 if data["identical"] else 1
    table = Table(title=f"asyncfc next to the frameworks (median of {args.repeats}, same simulated server)")
    for col in ("workload", "system", "wall s", "vs asyncfc-sync", "client CPU us/call", "note"):
        table.add_column(col, justify="left" if col in ("workload", "system", "note") else "right")
    for row in format_rows(data):
        table.add_row(*row)
    out = Console()
    out.print(table)
    for name, w in data["workloads"].items():
        gains = ", ".join(
            f"{f}: {g['asyncfc']:.2f}x" for f, g in w["gain_over_framework"].items() if g.get("asyncfc")
        )
        verdict = "identical results and state" if w["identical"] else "[red]results DIFFER[/red]"
        out.print(f"{name}: {verdict}; framework+asyncfc vs framework alone: {gains or '-'}")
    return 0 if data["identical"] else 1


# -- an upstream MCP server with a workload's tools (for the +asyncfc-mcp systems) ----------


def serve_upstream(workload: PeerWorkload, state_path: str) -> None:
    """Serve ``workload``'s tools over MCP stdio; the state is written to ``state_path`` after each call."""
    import os

    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    state = State()
    server = MCPServer(f"peers-{workload.name}", log_level="CRITICAL")

    def save() -> None:
        tmp = state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"log": state.log, "store": state.store}, f)
        os.replace(tmp, state_path)

    for t in workload.tools(state):
        fn = t.fn

        def wrapped(fn: Callable[..., Awaitable[Any]] = fn) -> Callable[..., Awaitable[Any]]:
            import functools

            @functools.wraps(fn)
            async def call(**kwargs: Any) -> Any:
                value = await fn(**kwargs)
                save()
                return value

            return call

        server.tool(annotations=ToolAnnotations(read_only_hint=t.pure))(wrapped())
    server.run("stdio")


if __name__ == "__main__":  # python -m asyncfc_bench.peers upstream CONFIG_JSON STATE_PATH
    if len(sys.argv) == 4 and sys.argv[1] == "upstream":
        serve_upstream(PeerWorkload(**json.loads(sys.argv[2])), sys.argv[3])
