"""What the SDK-backed adapters share: making, owning and closing their client."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar


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


class OwnedClient(Generic[_Client]):
    """Closes the SDK client on :meth:`aclose` only if the adapter made it."""

    client: _Client
    _owns_client: bool

    async def aclose(self) -> None:
        """Close the HTTP client if this adapter made it."""
        if self._owns_client:
            await self.client.close()

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
