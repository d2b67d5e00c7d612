"""The scheduling mode: one object, owned by the runtime, that every host shares.

* ``sync``: the classic loop; each call runs to completion before the next one starts, in
  program order, whoever submits them (the agent, the MCP proxy, a framework's toolset).
* ``parallel``: classic parallel function calling; calls run concurrently, each answered
  with its value; the host waits for all of a step's values.
* ``async``: every call is answered at once with its value or a future; calls run as data
  dependencies and read/write sets allow, and values reach the model later.
"""

from __future__ import annotations

from enum import Enum
from typing import Literal

from .errors import ConfigurationError

__all__ = ["MODES", "Mode", "ModeName"]

ModeName = Literal["sync", "parallel", "async"]
"""A mode written as text, as options and ``--modes`` take it."""


class Mode(str, Enum):
    """How calls are ordered and what the model is shown while they run."""

    SYNC = "sync"
    PARALLEL = "parallel"
    ASYNC = "async"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def of(cls, value: Mode | str) -> Mode:
        """``value`` as a Mode; :class:`ConfigurationError`, listing the valid values, otherwise."""
        try:
            return cls(value)
        except ValueError:
            raise ConfigurationError(f"unknown mode {value!r}; valid values: {', '.join(MODES)}") from None

    @property
    def shows_futures(self) -> bool:
        """The model sees placeholders and references, and has the ``await_future`` tool."""
        return self is Mode.ASYNC

    @property
    def one_at_a_time(self) -> bool:
        """Each call waits for the previous one to finish (the synchronous baseline)."""
        return self is Mode.SYNC

    @property
    def dispatches_early(self) -> bool:
        """Calls may start while the model is still writing the rest of its response."""
        return self is not Mode.SYNC


MODES: tuple[ModeName, ...] = ("sync", "parallel", "async")
"""Every mode, from the synchronous baseline to full asynchrony."""
