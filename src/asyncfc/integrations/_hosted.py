"""What the framework toolsets share: one runtime, the calls made through it, the end of a run.

A framework owns its loop and its history, so asyncfc can act only through tool results:
a call answers with its value or a placeholder, and values of earlier calls ride along
with later tool results (:meth:`asyncfc.runtime.Runtime.call`). When the framework's run
ends, :meth:`HostedRuntime.finish` settles what is still pending and decides, as
asyncfc's own ``Agent`` does with ``revise="when_needed"``, whether the model must see
those values before its answer can stand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

from ..errors import check_choice
from ..runtime import Runtime, revision_needed
from ..scheduler import Call
from ..tools import Tool

Revise = Literal["when_needed", "always", "never"]
"""After a run ends with values still pending: ``when_needed`` asks the model again only if a
settled call failed or its answer cites a future id; ``always`` whenever values were pending;
``never`` hands them to the caller only."""

SETTLED_PROMPT = (
    "Calls that were still running when you answered have finished. Their results: {results}\n"
    "If they change your answer, give the corrected answer; otherwise repeat it."
)
"""The user message of a revision turn (``{results}`` is the runtime's delivery text)."""

R = TypeVar("R")
T = TypeVar("T")
_H = TypeVar("_H", bound="HostedRuntime")
_S = TypeVar("_S", bound="HostedTools[Any]")


@dataclass
class Finish:
    """What settling the end of a run found."""

    settled: str | None
    """The delivery text of values the model had not seen (None if there were none)."""
    calls: list[Call]
    """The calls that were still pending delivery when the run ended."""
    revise: bool
    """Whether the model should get one more turn with :attr:`prompt`."""

    @property
    def prompt(self) -> str:
        return SETTLED_PROMPT.format(results=self.settled or "[]")


@dataclass
class HostedRun(Generic[R]):
    """A framework run with asyncfc underneath, settled: every call resolved and delivered."""

    result: R
    """The framework's own result of the last run (after any revision turns)."""
    output: str
    """The final answer text."""
    calls: list[Call]
    """Every call made through the runtime, in program order."""
    settled: list[str] = field(default_factory=list)
    """Delivery texts handed over after a run ended (to the model if it revised, else only here)."""
    revisions: int = 0
    """How many extra framework runs were made so the model could see settled values."""


class HostedRuntime:
    """One asyncfc :class:`Runtime` behind a framework's tools (one conversation).

    Pass asyncfc tools (a runtime is created, owned and closed here) or an existing
    ``runtime``. Every framework tool built from it forwards to :meth:`call`.
    """

    def __init__(
        self,
        tools: Sequence[Tool] | None = None,
        *,
        runtime: Runtime | None = None,
        revise: Revise = "when_needed",
        max_revisions: int = 1,
        **runtime_options: Any,
    ) -> None:
        if (tools is None) == (runtime is None):
            raise ValueError("pass either asyncfc tools or a runtime")
        check_choice("revise policy", revise, ("when_needed", "always", "never"))
        self._owns_runtime = runtime is None
        self.runtime = runtime if runtime is not None else Runtime(tools or [], **runtime_options)
        self.revise: Revise = revise
        self.max_revisions = max_revisions
        self.calls: list[Call] = []
        """Calls made through this host, in the order the framework started them."""

    @property
    def instructions(self) -> str:
        """The lines that explain placeholders; add them to the framework agent's instructions."""
        return self.runtime.instructions

    def tool_specs(self) -> list[dict[str, Any]]:
        """OpenAI-format specs as the model must see them (widened schemas, ``await_future``)."""
        return self.runtime.tool_specs()

    async def call(
        self, name: str, arguments: str | Mapping[str, Any], tool_call_id: str | None = None
    ) -> str:
        """The tool-message text for one call the framework makes."""
        reply = await self.runtime.call(name, arguments, tool_call_id)
        if reply.call is not None:
            self.calls.append(reply.call)
        return reply.text

    async def finish(self, answer: str) -> Finish:
        """Settle every pending call at the end of a framework run and decide about revision."""
        pending = [c for c in self.calls if c.delivered_at is None]
        settled = await self.runtime.settle()
        if settled is None:
            return Finish(None, [], False)
        if self.revise == "always":
            revise = True
        elif self.revise == "never":
            revise = False
        else:
            revise = revision_needed(answer, pending)
        return Finish(settled, pending, revise)

    async def aclose(self) -> None:
        """Close the runtime if this host created it (pending calls resolve to ``cancelled``)."""
        if self._owns_runtime:
            await self.runtime.aclose()

    async def __aenter__(self: _H) -> _H:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class HostedTools(Generic[T]):
    """A framework's tools (``tools``, of the framework's own type ``T``) over one hosted runtime.

    Give it asyncfc tools (it then owns its runtime; close it with ``await t.aclose()`` or
    ``async with``) or an existing ``runtime``. Subclasses build one framework tool per spec.
    """

    def __init__(
        self,
        tools: Sequence[Tool] | None = None,
        *,
        runtime: Runtime | None = None,
        revise: Revise = "when_needed",
        **runtime_options: Any,
    ) -> None:
        self.host = HostedRuntime(tools, runtime=runtime, revise=revise, **runtime_options)
        self.tools: list[T] = [self._framework_tool(spec) for spec in self.host.tool_specs()]

    def _framework_tool(self, spec: dict[str, Any]) -> T:
        raise NotImplementedError

    @property
    def runtime(self) -> Runtime:
        return self.host.runtime

    @property
    def calls(self) -> list[Call]:
        return self.host.calls

    @property
    def instructions(self) -> str:
        return self.host.instructions

    async def aclose(self) -> None:
        """Close the runtime if these tools created it (pending calls are cancelled)."""
        await self.host.aclose()

    async def __aenter__(self: _S) -> _S:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
