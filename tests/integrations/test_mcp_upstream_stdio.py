"""asyncfc's own stdio transport to an upstream MCP server (issue 19, item 5: proxy cost).

A scripted upstream (a few lines of Python speaking raw JSON-RPC) shows what the SDK's
client would otherwise guarantee: a request beside the SDK's session gets its own answer,
an error answer raises, a cancelled request tells the server, a server that dies fails the
requests still waiting, and stopping the server reaches the processes it started.
"""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

import mcp.types as mt  # noqa: E402
from mcp.shared.exceptions import MCPError  # noqa: E402

from asyncfc.integrations.mcp.transport import UpstreamReadStream, UpstreamStdio  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the SDK's transport serves Windows")

SERVER = textwrap.dedent(
    """
    import json, os, subprocess, sys, time
    if sys.argv[1:] == ["spawn"]:  # start a grandchild, say its pid, then ignore stdin's end
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print(json.dumps({"jsonrpc": "2.0", "method": "pid", "params": {"pid": child.pid}}), flush=True)
        time.sleep(600)
    for line in sys.stdin:
        msg = json.loads(line)
        if msg.get("method") == "notifications/cancelled":
            out = {"jsonrpc": "2.0", "method": "saw_cancel", "params": msg["params"]}
        elif msg["params"]["name"] == "echo":
            out = {"jsonrpc": "2.0", "id": msg["id"], "result": {"content": [], "echo": msg["params"]}}
        elif msg["params"]["name"] == "refuse":
            out = {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32602, "message": "no such tool"}}
        elif msg["params"]["name"] == "die":
            os._exit(3)
        else:  # hang: never answered
            continue
        print(json.dumps(out), flush=True)
    """
)


async def _collect(read: UpstreamReadStream, into: list[Any], arrived: asyncio.Event) -> None:
    """What the SDK's session would read: everything not answered to a request of ours."""
    try:
        while True:
            into.append(await read.receive())
            arrived.set()
    except Exception as exc:  # noqa: BLE001 - the end of the stream, recorded
        into.append(exc)


def test_requests_beside_the_session(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(SERVER)

    async def main() -> None:
        stdio = UpstreamStdio([sys.executable, str(script)])
        seen: list[Any] = []
        arrived = asyncio.Event()
        async with stdio as (read, _write):
            reader = asyncio.create_task(_collect(read, seen, arrived))
            result = await stdio.request("tools/call", {"name": "echo", "arguments": {"n": 1}})
            assert result["echo"] == {"name": "echo", "arguments": {"n": 1}}
            with pytest.raises(MCPError, match="no such tool"):
                await stdio.request("tools/call", {"name": "refuse"})
            hanging = asyncio.create_task(stdio.request("tools/call", {"name": "hang"}))
            await asyncio.sleep(0)  # the request is written before its task first waits
            assert len(read.waiting) == 1
            hanging.cancel()
            with pytest.raises(asyncio.CancelledError):
                await hanging
            await arrived.wait()  # the server's note that it was told
            note = seen[0].message
            assert isinstance(note, mt.JSONRPCNotification) and note.method == "saw_cancel"
            assert str(note.params["requestId"]).startswith("asyncfc-")  # type: ignore[index]
            # the server dies with a request waiting: it fails, it is not left hanging
            with pytest.raises(MCPError) as died:
                await stdio.request("tools/call", {"name": "die"})
            assert died.value.error.code == mt.CONNECTION_CLOSED
            await reader

    asyncio.run(main())


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for an init that does not reap counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return not stat.parent.exists()


def test_stopping_reaches_the_servers_children(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(SERVER)

    async def main() -> int:
        stdio = UpstreamStdio([sys.executable, str(script), "spawn"])
        async with stdio as (read, _write):
            first = await read.receive()
        assert not isinstance(first, Exception)
        params: dict[str, Any] = first.message.params  # type: ignore[union-attr,assignment]
        return int(params["pid"])

    grandchild = asyncio.run(main())
    # the server ignored its stdin's end: SIGTERM went to its whole process group
    for _ in range(3000):  # SIGTERM is delivered at once; dying may take the scheduler a moment
        if not _alive(grandchild):
            break
        time.sleep(0.01)
    assert not _alive(grandchild)
