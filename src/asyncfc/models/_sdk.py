"""What the SDK-backed adapters share: making, owning and closing their client."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from ..errors import ModelError


class _Closable(Protocol):
    async def close(self) -> None: ...


_Self = TypeVar("_Self", bound="OwnedClient[Any]")
_Client = TypeVar("_Client", bound=_Closable)


def client_kwargs(
    base_url: str | None, api_key: str | None, key_env: Sequence[str], max_retries: int, timeout: float | None
) -> dict[str, Any]:
    """SDK client arguments; keyless local servers get a placeholder key (the SDKs insist on one)."""
    if api_key is None and base_url is not None and not any(os.environ.get(v) for v in key_env):
        api_key = "sk-no-key"
    kwargs: dict[str, Any] = {"base_url": base_url, "api_key": api_key, "max_retries": max_retries}
    if timeout is not None:
        kwargs["timeout"] = timeout
    return kwargs


LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})


def connection_error(name: str, url: str, detail: str, *, timed_out: bool = False) -> ModelError:
    """The :class:`ModelError` of a request that got no answer from ``url``: it names the
    URL, and for a server on this machine, how to start the embedded model."""
    if timed_out:
        return ModelError(
            f"model {name!r}: no answer from {url} in time ({detail}); the server is busy or "
            "stuck, or give the adapter a longer timeout="
        )
    host = (urlsplit(url).hostname or "").lower()
    if host in LOCAL_HOSTS:
        hint = (
            "is its server running? For the embedded model, start it with `asyncfc model serve` "
            "(or use asyncfc.local.model(), which starts it)"
        )
    else:
        hint = "check the base_url and the network"
    return ModelError(f"model {name!r}: cannot reach {url} ({detail}); {hint}")


class OwnedClient(Generic[_Client]):
    """Owns the SDK client unless the caller passed one.

    Connections belong to the event loop that opened them, so a client the adapter makes
    is made on first use in each event loop and closed by :meth:`aclose`; the next use
    (the next ``Agent.run_sync``, say) makes a fresh one. A caller's client is used as it
    is and never closed here.
    """

    def _adopt(self, client: _Client | None, make: Callable[[], _Client]) -> None:
        self._given = client
        self._make = make
        self._owned: _Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def client(self) -> _Client:
        """The SDK client to send requests with (the caller's, or this loop's own)."""
        if self._given is not None:
            return self._given
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if self._owned is None or (loop is not None and loop is not self._loop):
            self._owned, self._loop = self._make(), loop
        return self._owned

    async def aclose(self) -> None:
        """Close the HTTP client if this adapter made it (a later request makes a new one)."""
        owned, self._owned = self._owned, None
        if owned is not None:
            await owned.close()

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
