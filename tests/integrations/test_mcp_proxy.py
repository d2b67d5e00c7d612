"""The MCP proxy: the official ``mcp`` client against ``asyncfc mcp serve`` (over stdio and
streamable HTTP) in front of FastMCP upstream servers (over stdio and streamable HTTP).

Upstreams live in ``tests/mcp_upstreams/shop.py``; timings come from the upstreams' own
clocks (start/end of each call), not from the test's, so a busy machine cannot flip them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

import mcp.types as mt  # noqa: E402
from mcp import Client, StdioServerParameters  # noqa: E402

from asyncfc.cli import main as cli_main  # noqa: E402
from asyncfc.errors import ConfigurationError  # noqa: E402
from asyncfc.integrations.mcp import (  # noqa: E402
    Proxy,
    ProxyConfig,
    UpstreamPool,
    UpstreamSpec,
    parse_annotations,
    parse_upstream,
    result_value,
)
from asyncfc.integrations.mcp.annotations import tool_options  # noqa: E402
from asyncfc.integrations.mcp.upstream import Upstream  # noqa: E402

SHOP = Path(__file__).resolve().parent / "mcp_upstreams" / "shop.py"
DELAY = 0.8
"""Seconds a slow upstream call takes; well above the proxy's grace window."""
GRACE = 0.3
SHOP_CMD = f"{sys.executable} {SHOP} --delay {DELAY}"
PROXY = [sys.executable, "-m", "asyncfc.cli", "mcp", "serve", "--grace", str(GRACE)]

ANNOTATIONS = """
[tools.write_file]
writes = ["files/{path}"]
reads = []

[tools.read_file]
reads = ["files/{path}"]
writes = []

[tools.stall]
timeout = 0.5

[tools."shop.quick_stock"]
pure = true

[tools.lookup_price]
output_example = {item = "", price = 0.0}
"""


# -- helpers ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[str], deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@contextlib.contextmanager
def http_upstream(role: str, name: str) -> Iterator[str]:
    port = _free_port()
    cmd = [
        sys.executable,
        str(SHOP),
        "--role",
        role,
        "--name",
        name,
        "--http",
        str(port),
        "--delay",
        str(DELAY),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    try:
        _wait_port(port, proc)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        _stop(proc)


@contextlib.contextmanager
def http_proxy(*args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``asyncfc mcp serve --transport http --port 0``; the URL is read from its stderr."""
    proc = subprocess.Popen(
        [*PROXY, "--transport", "http", "--port", "0", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        end = time.monotonic() + 30
        url = None
        while url is None and time.monotonic() < end and proc.poll() is None:
            ready, _, _ = select.select([proc.stderr], [], [], 0.2)
            if ready:
                line = proc.stderr.readline()
                lines.append(line)
                m = re.search(r"(http://\S+/mcp)", line)
                url = m.group(1) if m else None
        assert url is not None, f"proxy did not start: {''.join(lines)}"
        drain = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
        drain.start()
        yield url, proc
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def files_url() -> Iterator[str]:
    with http_upstream("files", "files") as url:
        yield url


@pytest.fixture(scope="module")
def annotations_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mcp") / "tools.toml"
    path.write_text(ANNOTATIONS, encoding="utf-8")
    return path


class Ledger:
    """Every result a client got; checks that each future's value arrived exactly once."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.values: dict[str, dict[str, Any]] = {}

    def add(self, result: mt.CallToolResult) -> Any:
        assert len(result.content) == 1 and isinstance(result.content[0], mt.TextContent)
        body = json.loads(result.content[0].text)
        for item in body if isinstance(body, list) else [body]:
            for entry in [item, *item.get("resolved_earlier", [])]:
                if entry.get("status") in ("resolved", "failed") and entry.get("future"):
                    self.seen[entry["future"]] += 1
                    self.values[entry["future"]] = entry
        return body

    def pending(self, issued: int) -> list[str]:
        return [f"fut_{i}" for i in range(1, issued + 1) if f"fut_{i}" not in self.seen]

    def check_exactly_once(self, issued: int) -> None:
        assert {f"fut_{i}" for i in range(1, issued + 1)} == set(self.seen)
        assert all(n == 1 for n in self.seen.values()), self.seen

    def value(self, fid: str) -> Any:
        entry = self.values[fid]
        assert entry["status"] == "resolved", entry
        return entry["value"]


async def _events(call: Callable[[str, dict[str, Any]], Awaitable[Any]], tool: str, expect: str) -> list[str]:
    """Poll an upstream's record of cancelled calls until ``expect`` shows up (5 s at most)."""
    end = time.monotonic() + 5.0
    while True:
        body = await call(tool, {})
        events: list[str] = body.get("value", []) if body.get("status") == "resolved" else []
        if expect in events or time.monotonic() > end:
            return events
        await asyncio.sleep(0.05)


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a["start"] < b["end"] and b["start"] < a["end"])


# -- unit: annotations, results, names --------------------------------------------


def _mcp_tool(name: str, hints: mt.ToolAnnotations | None, props: tuple[str, ...] = ("path",)) -> mt.Tool:
    schema = {"type": "object", "properties": {p: {"type": "string"} for p in props}}
    return mt.Tool(name=name, input_schema=schema, annotations=hints)


def test_read_write_sets_from_hints_and_file() -> None:
    empty = parse_annotations("")
    ro = _mcp_tool("look", mt.ToolAnnotations(read_only_hint=True))
    rw = _mcp_tool("poke", mt.ToolAnnotations(destructive_hint=False))
    bare = _mcp_tool("bare", None)
    assert tool_options("fs", ro, "look", empty) | {} == {
        "output_example": None,
        "reads": ["fs"],
        "writes": [],
    }
    assert tool_options("fs", rw, "poke", empty)["writes"] == ["fs"]
    opts = tool_options("fs", bare, "bare", empty)
    assert opts["reads"] is None and opts["writes"] is None  # tool_from_schema: the root

    ann = parse_annotations(
        """
        [servers.fs]
        label = "disk"
        [tools.poke]
        writes = ["files/{path}", "/shared/log"]
        timeout = 2.5
        output_example = {ok = true}
        [tools."fs.bare"]
        pure = true
        [tools.look]
        reads = ["/"]
        """
    )
    poke = tool_options("fs", rw, "poke", ann)
    assert poke["writes"] == ["disk/files/{path}", "shared/log"] and poke["reads"] == []
    assert poke["timeout"] == 2.5 and poke["output_example"] == {"ok": True}
    assert tool_options("fs", bare, "bare", ann)["pure"] is True
    assert tool_options("fs", ro, "look", ann)["reads"] == [""]  # "/" is the root
    assert tool_options("other", bare, "other_bare", ann)["reads"] is None  # "fs.bare" only


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[tools.x]\nwrites = 3", "writes"),
        ("[tools.x]\nfrobnicate = true", "frobnicate"),
        ("[tools.x]\npure = true\nwrites = ['a']", "pure"),
        ("[tools.x]\ntimeout = -1", "timeout"),
        ("[tools.x\n", "TOML"),
    ],
)
def test_bad_annotation_files_say_what_is_wrong(text: str, needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        parse_annotations(text)


def test_label_templates_must_name_parameters() -> None:
    ann = parse_annotations('[tools.poke]\nwrites = ["files/{name}"]')
    with pytest.raises(ConfigurationError, match="name"):
        tool_options("fs", _mcp_tool("poke", None), "poke", ann)


def test_results_become_json_values() -> None:
    def text(t: str) -> mt.TextContent:
        return mt.TextContent(type="text", text=t)

    assert result_value(mt.CallToolResult(content=[text('{"a": 1}')])) == {"a": 1}
    assert result_value(mt.CallToolResult(content=[text("hello")])) == "hello"
    assert result_value(mt.CallToolResult(content=[text("3")])) == 3
    assert result_value(mt.CallToolResult(content=[text("a"), text("b")])) == ["a", "b"]
    assert result_value(mt.CallToolResult(content=[])) is None
    wrapped = mt.CallToolResult(content=[], structured_content={"result": [1, 2]})
    schema = {"type": "object", "properties": {"result": {"type": "array"}}}
    assert result_value(wrapped, schema) == [1, 2]
    assert result_value(wrapped, None) == {"result": [1, 2]}
    image = mt.ImageContent(type="image", data="aGVsbG8=", mime_type="image/png")
    assert result_value(mt.CallToolResult(content=[image])) == {
        "type": "image",
        "mimeType": "image/png",
        "bytes": 6,
    }


def test_upstream_arguments_and_clashing_names() -> None:
    assert parse_upstream("shop=python shop.py") == UpstreamSpec("python shop.py", "shop")
    assert parse_upstream("python s.py --x=1") == UpstreamSpec("python s.py --x=1")
    assert parse_upstream("http://h:9/mcp").is_url
    assert UpstreamSpec("python /a/b/server.py --flag").derived_name() == "server"
    assert UpstreamSpec("http://127.0.0.1:9000/mcp").derived_name() == "s_127_0_0_1_9000"
    with pytest.raises(ConfigurationError):
        parse_upstream("  ")

    def up(name: str, *tools: str) -> Upstream:
        return Upstream(UpstreamSpec(name), name, [_mcp_tool(t, None) for t in tools])

    pool = UpstreamPool([])
    pool.upstreams = [up("a", "read", "only_a", "await_future"), up("b", "read")]
    ann = parse_annotations("[tools.only_a]\npure = true\n[tools.nothing]\npure = true\n[servers.zz]\n")
    tools, stale = pool.proxy_tools(ann)
    assert [t.exposed for t in tools] == ["a_read", "only_a", "a_await_future", "b_read"]
    assert tools[1].tool.pure and stale == ["tools.nothing", "servers.zz"]
    tools, _ = pool.proxy_tools(prefix=True)
    assert [t.exposed for t in tools] == ["a_read", "a_only_a", "a_await_future", "b_read"]


def test_cli_help_lists_values_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main(["mcp", "serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for needle in (
        "{stdio,http}",
        "(default: stdio)",
        "(default: 8000)",
        "--annotations",
        "(default: auto)",
    ):
        assert needle in text
    assert cli_main(["mcp", "serve"]) == 2  # no upstream


# -- end to end ----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def stdio_proxy(*args: str) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=PROXY[0], args=[*PROXY[1:], *args], env=dict(os.environ))
    async with Client(params) as client:
        yield client


def test_stdio_proxy_end_to_end(files_url: str, annotations_file: Path) -> None:
    """One session over stdio, upstreams over stdio (shop) and streamable HTTP (files)."""

    async def main() -> None:
        async with stdio_proxy(
            "--upstream", f"shop={SHOP_CMD}", "--upstream", files_url, "--annotations", str(annotations_file)
        ) as c:
            ledger = Ledger()
            n = 0

            async def call(name: str, args: dict[str, Any], **kw: Any) -> Any:
                nonlocal n
                result = await c.call_tool(name, args, **kw)
                body = ledger.add(result)
                if name != "await_future":
                    n += 1
                    assert body["future"] == f"fut_{n}"
                    assert result.is_error == (body["status"] == "failed")
                return body

            # the listing: upstream tools with widened schemas, hints kept, plus await_future
            listed = {t.name: t for t in (await c.list_tools()).tools}
            assert {"lookup_price", "place_order", "write_file", "stall", "await_future"} <= set(listed)
            assert "anyOf" in listed["place_order"].input_schema["properties"]["price"]
            assert listed["lookup_price"].annotations is not None
            assert listed["lookup_price"].annotations.read_only_hint
            assert c.instructions is not None and "fut_1" in c.instructions

            # slow calls answer with placeholders (structured from output_example), fast ones with values
            first = await call("lookup_price", {"item": "apple"})
            assert first["status"] == "pending" and first["fields"]["price"] == "fut_1.price"
            stock = await call("quick_stock", {"item": "pear"})  # pure (file): never waits
            assert stock["status"] == "resolved" and stock["value"] == 4
            assert (await call("lookup_price", {"item": "fig"}))["status"] == "pending"
            # a future passed into a later call; a failing call after it (same server: in order)
            order = await call("place_order", {"item": "apple", "price": "fut_1.price", "qty": 2})
            assert order["status"] == "pending"
            assert (await call("fail", {"reason": "out of stock"}))["status"] == "pending"
            awaited = ledger.add(await c.call_tool("await_future", {"ids": ["fut_4"]}))
            assert awaited["value"]["total"] == 3.0
            # the two lookups (reads) overlapped; the order started after the price it used
            apple, fig = ledger.value("fut_1"), ledger.value("fut_3")
            assert _overlap(apple, fig)
            assert ledger.value("fut_4")["start"] >= apple["end"]

            # progress passes through
            seen: list[float] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                seen.append(progress)

            counted = await call("count_up", {"n": 3}, progress_callback=on_progress)
            assert seen and seen == sorted(seen) and seen[-1] <= 3
            if counted["status"] == "resolved":
                assert counted["value"] == 3 and seen == [1, 2, 3]

            # a call past its timeout (file: 0.5 s) resolves to a timeout and is cancelled upstream
            assert (await call("stall", {"tag": "t1"}))["status"] == "pending"
            timed_out = ledger.add(await c.call_tool("await_future", {"ids": [f"fut_{n}"]}))
            assert timed_out["error"]["type"] == "timeout" and "0.5 s" in timed_out["error"]["message"]
            assert "cancelled t1" in await _events(call, "get_stalls", "cancelled t1")

            # notifications/cancelled cancels the call upstream; its cancellation is reported later
            task = asyncio.ensure_future(c.call_tool("hang", {"tag": "c1"}))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            n += 1
            cancelled_id = f"fut_{n}"
            assert "cancelled c1" in await _events(call, "get_events", "cancelled c1")
            assert ledger.values[cancelled_id]["error"]["type"] == "cancelled"

            # templated write sets (file): different paths in parallel, the same path in order
            await call("write_file", {"path": "a", "text": "one"})
            await call("write_file", {"path": "b", "text": "two"})
            await call("write_file", {"path": "a", "text": "three"})
            read = await call("read_file", {"path": "a"})
            ids = [f"fut_{i}" for i in range(n - 3, n + 1)]
            ledger.add(await c.call_tool("await_future", {"ids": [i for i in ids if i not in ledger.seen]}))
            w1, w2, w3 = (ledger.value(i) for i in ids[:3])
            assert _overlap(w1, w2) and w3["start"] >= w1["end"]
            assert ledger.value(ids[3]) == "three" or read.get("value") == "three"

            # an unannotated tool runs alone; an unknown future is an error value
            assert (await call("untagged", {"x": "fut_99"}))["error"]["type"] == "unknown_future"

            # the upstream crashes: this call and later ones on it fail; the other upstream works
            crashed = await call("crash", {})
            if crashed["status"] == "pending":
                crashed = ledger.add(await c.call_tool("await_future", {"ids": [f"fut_{n}"]}))
            assert crashed["error"]["type"] == "tool_error"
            assert "UpstreamUnavailable" in crashed["error"]["message"]
            after = await call("list_orders", {})
            assert after["status"] == "failed" and "closed its connection" in after["error"]["message"]
            assert (await call("read_file", {"path": "b"}))["value"] == "two"

            # everything was delivered, each exactly once
            missing = ledger.pending(n)
            if missing:
                ledger.add(await c.call_tool("await_future", {"ids": missing}))
            ledger.check_exactly_once(n)
            errors = {ledger.values[f]["error"]["type"] for f in ledger.values if "error" in ledger.values[f]}
            assert errors == {"tool_error", "timeout", "cancelled", "unknown_future"}
            assert "refused: out of stock" in ledger.values["fut_5"]["error"]["message"]

    asyncio.run(main())


def test_http_proxy_sessions_cancellation_and_close(files_url: str, annotations_file: Path) -> None:
    """Over streamable HTTP every MCP session has its own futures; closing one cancels its calls."""
    with http_proxy(
        "--upstream",
        f"shop={SHOP_CMD}",
        "--upstream",
        f"files={files_url}",
        "--annotations",
        str(annotations_file),
    ) as (url, _proc):

        async def main() -> None:
            async with Client(url) as a:
                assert a.protocol_version in ("2025-11-25", "2025-06-18")
                la = Ledger()

                async def a_call(name: str, args: dict[str, Any]) -> Any:
                    return la.add(await a.call_tool(name, args))

                assert la.add(await a.call_tool("lookup_price", {"item": "pear"}))["status"] == "pending"
                async with Client(url) as b:
                    lb = Ledger()
                    # b has no fut_1: a's future is unknown there
                    foreign = lb.add(await b.call_tool("quick_stock", {"item": "fut_1"}))
                    assert foreign["future"] == "fut_1" and foreign["error"]["type"] == "unknown_future"
                    assert lb.add(await b.call_tool("lookup_price", {"item": "fig"}))["future"] == "fut_2"
                    # a sees its own value (piggybacked or awaited), b its own
                    got = la.add(await a.call_tool("await_future", {"ids": ["fut_1"]}))
                    assert la.value("fut_1")["price"] == 2.0 or got["status"] == "delivered"
                    lb.add(await b.call_tool("await_future", {"ids": ["fut_2"]}))
                    assert lb.value("fut_2")["price"] == 4.25
                    lb.check_exactly_once(2)
                    # b leaves with a call pending: the proxy cancels it upstream
                    assert lb.add(await b.call_tool("hang", {"tag": "left"}))["status"] == "pending"
                assert "cancelled left" in await _events(a_call, "get_events", "cancelled left")

                # notifications/cancelled over HTTP
                task = asyncio.ensure_future(a.call_tool("hang", {"tag": "c2"}))
                await asyncio.sleep(0.05)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert "cancelled c2" in await _events(a_call, "get_events", "cancelled c2")

        asyncio.run(main())


def test_unreachable_http_upstream_is_an_error_value() -> None:
    """An HTTP upstream that goes away mid-session: its calls resolve to errors the model reads."""
    port = _free_port()
    cmd = [sys.executable, str(SHOP), "--role", "files", "--name", "doomed", "--http", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)

    async def report(*_: Any) -> None:
        return None

    async def main() -> None:
        _wait_port(port, proc)
        async with UpstreamPool([UpstreamSpec(f"http://127.0.0.1:{port}/mcp")]) as pool:
            tools, _ = pool.proxy_tools()
            assert pool.upstreams[0].name == "doomed"
            proxy = Proxy(tools, ProxyConfig(grace_s=5.0, timeout_s=10.0))
            failed = await proxy.call_tool("s", "read_file", {"path": "nope"}, report)
            body = json.loads(failed.content[0].text)  # type: ignore[union-attr]
            assert failed.is_error and body["error"] == {
                "type": "tool_error",
                "message": "read_file raised UpstreamToolError: no such file: nope",
            }
            _stop(proc)
            gone = await proxy.call_tool("s", "read_file", {"path": "x"}, report)
            body = json.loads(gone.content[0].text)  # type: ignore[union-attr]
            assert gone.is_error and body["error"]["type"] == "tool_error"
            assert "UpstreamUnavailable" in body["error"]["message"]
            await proxy.sessions.aclose()
        with pytest.raises(Exception, match="cannot connect"):
            async with UpstreamPool([UpstreamSpec(f"http://127.0.0.1:{port}/mcp")]):
                pass

    try:
        asyncio.run(main())
    finally:
        _stop(proc)


def test_cancelled_await_future_loses_no_value() -> None:
    """In process: a cancelled await_future leaves every value to a later result."""
    from asyncfc import tool_from_schema
    from asyncfc.integrations.mcp.upstream import ProxyTool

    async def nap(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    schema = {"name": "nap", "parameters": {"type": "object", "properties": {"seconds": {"type": "number"}}}}
    listed = mt.Tool(name="nap", input_schema=schema["parameters"])
    proxy = Proxy(
        [ProxyTool("nap", None, listed, tool_from_schema(schema, nap, pure=True))], ProxyConfig(grace_s=0.05)
    )  # type: ignore[arg-type]

    async def report(*_: Any) -> None:
        return None

    async def main() -> None:
        ledger = Ledger()
        for seconds in (0.2, 0.6):
            ledger.add(await proxy.call_tool("s", "nap", {"seconds": seconds}, report))
        waiting = asyncio.ensure_future(
            proxy.call_tool("s", "await_future", {"ids": ["fut_1", "fut_2"]}, report)
        )
        await asyncio.sleep(0.4)  # fut_1 has resolved, fut_2 has not
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.sleep(0.4)
        ledger.add(await proxy.call_tool("s", "nap", {"seconds": 0}, report))
        ledger.check_exactly_once(3)
        assert [ledger.value(f"fut_{i}") for i in (1, 2)] == [0.2, 0.6]
        assert [t.name for t in proxy.list_tools()] == ["nap", "await_future"]
        await proxy.sessions.aclose()

    asyncio.run(main())
