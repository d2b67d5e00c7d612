"""Plain ``tools/call`` requests over stdio, answered without the SDK's per-request dispatch.

The ``mcp`` SDK serves each request through a dispatcher, a per-request connection, a
middleware chain and a result sieve: about half of what a call through the proxy costs
over calling the upstream directly. A plain call needs none of it, so :class:`DirectCalls`
takes it from the read stream before the SDK sees it, runs it on the session's runtime and
writes the same response the SDK would (``tests/integrations/test_mcp_direct.py`` compares
the bytes). Everything else goes to the SDK as before: other methods, a call before the
handshake is done, a call that asks for progress, declares the tasks extension or carries
anything else in ``_meta`` or its params. ``notifications/cancelled`` for a call taken here
cancels it here (no response, as the SDK does).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import mcp.types as mt
from mcp_types.methods import serialize_server_result
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION, MODERN_PROTOCOL_VERSIONS

from .tasks import wants_tasks
from .transport import error_line

if TYPE_CHECKING:
    from .server import Proxy

__all__ = ["DirectCalls"]

ENVELOPE_KEYS = frozenset(
    {
        mt.PROTOCOL_VERSION_META_KEY,
        mt.CLIENT_INFO_META_KEY,
        mt.CLIENT_CAPABILITIES_META_KEY,
        mt.LOG_LEVEL_META_KEY,
    }
)
"""``_meta`` keys of a 2026-07-28 request that change nothing in how a call is answered."""


class DirectCalls:
    """Takes plain ``tools/call`` requests of one stdio session off the SDK's hands."""

    def __init__(
        self,
        proxy: Proxy,
        session: str,
        write: Callable[[bytes], Awaitable[None]],
        server_info: dict[str, Any],
    ) -> None:
        self.proxy = proxy
        self.session = session
        self._write = write
        self._server_info = server_info
        """The ``serverInfo`` stamp of 2026-07-28 results (serialized into each answer, never changed)."""
        self._era: str | None = None
        """``"modern"`` (2026-07-28, per-request envelopes) or ``"handshake"``, from the first request."""
        self._negotiated = LATEST_HANDSHAKE_VERSION
        """A handshake connection's protocol version, chosen as the SDK chooses it."""
        self._initialized = False
        self._running: dict[str | int, asyncio.Task[None]] = {}

    def take(self, message: mt.JSONRPCMessage) -> bool:
        """Whether this message is answered here (then the SDK never sees it)."""
        if isinstance(message, mt.JSONRPCNotification):
            return self._notified(message)
        if not isinstance(message, mt.JSONRPCRequest):
            return False
        if self._era is None:
            self._era = "handshake" if message.method == "initialize" else "modern"
            requested = (message.params or {}).get("protocolVersion")
            if self._era == "handshake" and requested in HANDSHAKE_PROTOCOL_VERSIONS:
                self._negotiated = str(requested)
        if message.method != "tools/call" or message.id in self._running:
            return False
        version = self._plain_call(message.params)
        if version is None:
            return False
        params = message.params or {}
        self._running[message.id] = asyncio.create_task(
            self._answer(message.id, params["name"], params.get("arguments") or {}, version)
        )
        return True

    def _notified(self, message: mt.JSONRPCNotification) -> bool:
        if message.method == "notifications/initialized":
            self._initialized = True
        elif message.method == "notifications/cancelled":
            request = (message.params or {}).get("requestId")
            task = self._running.get(request) if isinstance(request, (str, int)) else None
            if task is not None:
                task.cancel()
                return True
        return False

    def _plain_call(self, params: Mapping[str, Any] | None) -> str | None:
        """The request's protocol version if it is a plain call this class may answer, else None."""
        if params is None or not set(params) <= {"name", "arguments", "_meta"}:
            return None
        arguments = params.get("arguments")
        if not isinstance(params.get("name"), str) or not isinstance(arguments, (dict, type(None))):
            return None
        meta = params.get("_meta") or {}
        if not isinstance(meta, dict) or not set(meta) <= ENVELOPE_KEYS:
            return None
        if self._era == "handshake":
            return self._negotiated if self._initialized and not meta else None
        version = meta.get(mt.PROTOCOL_VERSION_META_KEY)
        capabilities = meta.get(mt.CLIENT_CAPABILITIES_META_KEY)
        if version not in MODERN_PROTOCOL_VERSIONS or not isinstance(capabilities, dict):
            return None
        if wants_tasks(version, meta):
            return None
        return str(version)

    async def _answer(self, id_: str | int, name: str, arguments: dict[str, Any], version: str) -> None:
        try:
            result = await self.proxy.call_tool(self.session, name, arguments, None)
            dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
            body = serialize_server_result("tools/call", version, dumped)  # the SDK's sieve
            if version in MODERN_PROTOCOL_VERSIONS:
                body["_meta"] = {mt.SERVER_INFO_META_KEY: self._server_info}
            line = json.dumps(
                {"jsonrpc": "2.0", "id": id_, "result": body}, separators=(",", ":"), ensure_ascii=False
            )
            await self._write(line.encode() + b"\n")
        except asyncio.CancelledError:
            pass  # notifications/cancelled or shutdown: no response (the call was cancelled)
        except Exception as exc:  # noqa: BLE001 - a bug here is reported to the client, never lost
            print(f"asyncfc mcp: tools/call {name!r} failed inside the proxy: {exc!r}", file=sys.stderr)
            await self._write(error_line(id_, mt.INTERNAL_ERROR, f"Internal error: {exc}"))
        finally:
            self._running.pop(id_, None)

    async def aclose(self) -> None:
        """Cancel the calls still running and wait for them (the session is ending)."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
