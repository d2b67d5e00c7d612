"""The end of a user turn, for every host: settle what is pending, then revise the answer or not.

A model may answer while some of its calls are still running (async mode). Before that answer
stands, the host waits for those calls and hands over their values (it *settles* them); the
model may have relied on a value it had not seen, so the host may give it another turn to
revise its answer. asyncfc's own :class:`~asyncfc.agent.Agent` does this in its loop, and the
framework integrations do it around the framework's run. This module holds what they must
agree on, once: the policy values (:data:`Revise`), the rule (:func:`revision_needed`), the
user message of a revision turn (``model_text.SETTLED_PROMPT``), and the integrations' loop
(:func:`settle_and_revise`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, Protocol, TypeVar, get_args

from .futures import REFERENCE
from .model_text import SETTLED_PROMPT
from .runtime import Runtime
from .scheduler import Call

__all__ = [
    "POLICIES",
    "HostedRun",
    "Revise",
    "Settling",
    "revision_needed",
    "settle_and_revise",
]

Revise = Literal["when_needed", "always", "never"]
"""After an answer given while calls were pending, once they have settled: ``when_needed``
asks the model again only if a settled call failed or the answer cites a future id (it
relied on a value the model had not seen); ``always`` asks it again whenever values were
pending; ``never`` accepts the answer (the values still reach the transcript or the caller)."""

POLICIES: tuple[Revise, ...] = get_args(Revise)
"""The valid ``revise`` values, for option checks and command-line choices."""

R = TypeVar("R")


def revision_needed(answer: str, settled: Sequence[Call], revise: Revise = "when_needed") -> bool:
    """Whether ``answer``, given while the ``settled`` calls were pending, must be revised now
    that they have settled, under the ``revise`` policy (nothing was pending: never)."""
    if not settled or revise == "never":
        return False
    if revise == "always":
        return True
    return any(c.error is not None for c in settled) or REFERENCE.search(answer) is not None


@dataclass
class HostedRun(Generic[R]):
    """A framework run with asyncfc underneath, settled: every call resolved and delivered."""

    result: R
    """The framework's own result of the last run (after any revision runs)."""
    output: str
    """The final answer text."""
    calls: list[Call]
    """Every call made through the host, in program order."""
    settled: list[str] = field(default_factory=list)
    """Delivery texts handed over after a run ended (to the model if it revised, else only here)."""
    revisions: int = 0
    """How many extra framework runs were made so the model could see settled values."""


class Settling(Protocol):
    """What :func:`settle_and_revise` needs of a host (``asyncfc.integrations``' ``HostedRuntime``)."""

    @property
    def runtime(self) -> Runtime: ...

    @property
    def calls(self) -> list[Call]:
        """The calls made through this host (a shared runtime may hold others)."""
        ...

    @property
    def revise(self) -> Revise: ...

    @property
    def max_revisions(self) -> int: ...


async def settle_and_revise(
    host: Settling,
    result: R,
    again: Callable[[R, str], Awaitable[R]],
    output_of: Callable[[R], str],
) -> HostedRun[R]:
    """The end of a user turn run by a framework: settle, then revise while the policy asks.

    ``result`` is the framework's result of its run; ``output_of`` reads the answer text of a
    result; ``again(result, prompt)`` runs the framework once more on that run's conversation
    plus the user message ``prompt`` (:data:`SETTLED_PROMPT` with the values) and returns the
    new result. Every pending call is awaited and delivered; the model gets another run when
    :func:`revision_needed` says so under ``host.revise``, at most ``host.max_revisions``
    times. Every delivery text is kept in :attr:`HostedRun.settled` (the last one, when the
    model does not revise, reaches only the caller).
    """
    out = HostedRun(result, output_of(result), host.calls)
    while True:
        pending = [c for c in host.calls if c.delivered_at is None]
        settled = await host.runtime.settle()
        if settled is None:
            return out
        out.settled.append(settled)
        if out.revisions >= host.max_revisions or not revision_needed(out.output, pending, host.revise):
            return out
        out.revisions += 1
        out.result = await again(out.result, SETTLED_PROMPT.format(results=settled))
        out.output = output_of(out.result)
