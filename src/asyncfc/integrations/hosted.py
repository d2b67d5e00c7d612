"""What the framework toolsets share: one runtime and the calls made through it.

A framework owns its loop and its history, so asyncfc can act only through tool results:
a call answers with its value or a placeholder, and values of earlier calls ride along
with later tool results (:meth:`asyncfc.runtime.Runtime.call`). When the framework's run
ends, each integration's ``run`` hands the host to :func:`asyncfc.revise.settle_and_revise`,
which settles what is still pending and decides, by the rule asyncfc's own ``Agent`` uses,
whether the model must see those values before its answer can stand.

The runtime a host creates is decided as the ``Agent`` decides a session's: in async mode,
when no tool is expected to be slow enough for a placeholder to pay, the model is shown
parallel mode (no text about futures), and the grace policy prices a model step with the
profile's cost priors.

A model's :class:`~asyncfc.models.ModelProfile` (``profile=``, e.g.
``asyncfc.local.EMBEDDED_PROFILE``) gives a framework's agent what asyncfc's own ``Agent``
gives that model: its instructions join :attr:`HostedRuntime.instructions`, its worked
example (:meth:`HostedRuntime.example`, in the runtime mode's form) goes before the
conversation that each integration's ``run`` starts, and a call that repeats an identical
earlier call of the same user turn is answered from that call instead of running again;
after a model step made only of such repeats, the next request is offered no tools and asked
for the answer (:meth:`HostedRuntime.next_step`, ``model_text.ANSWER_NOW``), so a small
model answers instead of looping until the framework's turn limit.

``hold_blind_writes`` (on in async mode, as in the ``Agent``) holds a state-changing call the
model wrote while a result of this user turn it had not seen was still pending (and that it
does not reference by future id): the call is not run, its tool message says so and carries
the pending values, and the model emits it again to run it. A host does not see the model's
steps, so a write in the same response as the lookup it needs is held too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Generic, TypeVar

from ..errors import ConfigurationError, check_choice, check_number
from ..futures import dumps, references_in
from ..grace import grace_policy
from ..mode import Mode
from ..model_text import AWAIT_TOOL, held_write, with_earlier
from ..models.base import Message, ModelProfile
from ..revise import POLICIES, Revise
from ..runtime import Runtime, tool_table
from ..scheduler import Call
from ..tools import Tool

__all__ = ["HostedRuntime", "HostedTools"]

T = TypeVar("T")
_H = TypeVar("_H", bound="HostedRuntime")
_S = TypeVar("_S", bound="HostedTools[Any]")


class HostedRuntime:
    """One asyncfc :class:`Runtime` behind a framework's tools (one conversation).

    Pass asyncfc tools (a runtime is created, owned and closed here) or an existing
    ``runtime``. Every framework tool built from it forwards to :meth:`call`. ``revise`` and
    ``max_revisions`` are the policy of :func:`asyncfc.revise.settle_and_revise` at the end of
    a run. ``profile`` is what the model needs (see the module docstring); none by default.
    ``hold_blind_writes`` (None: on in async mode) holds a write the model wrote blind.
    """

    def __init__(
        self,
        tools: Sequence[Tool] | None = None,
        *,
        runtime: Runtime | None = None,
        revise: Revise = "when_needed",
        max_revisions: int = 1,
        profile: ModelProfile | None = None,
        hold_blind_writes: bool | None = None,
        **runtime_options: Any,
    ) -> None:
        if (tools is None) == (runtime is None):
            raise ConfigurationError("pass either asyncfc tools or a runtime, not both or neither")
        check_choice("revise policy", revise, POLICIES)
        if hold_blind_writes not in (None, True, False):
            raise ConfigurationError(
                f"hold_blind_writes must be True, False or None, not {hold_blind_writes!r}"
            )
        check_number("max_revisions", max_revisions, 0, integer=True)
        if profile is not None and not isinstance(profile, ModelProfile):
            raise ConfigurationError(f"profile must be a ModelProfile, got {type(profile).__name__}")
        self.profile = profile or ModelProfile()
        """What the model needs (instructions, a worked example, repeats answered)."""
        self._owns_runtime = runtime is None
        mode = runtime.mode if runtime is not None else Mode.of(runtime_options.pop("mode", Mode.ASYNC))
        self.runtime = runtime if runtime is not None else self._runtime(tools or [], mode, runtime_options)
        self.revise: Revise = revise
        self.max_revisions = max_revisions
        self.hold_blind_writes = mode.shows_futures if hold_blind_writes is None else hold_blind_writes
        """Whether a state-changing call written before pending results were seen is held."""
        self.calls: list[Call] = []
        """Calls made through this host, in the order the framework started them."""
        self.held: list[tuple[str, str]] = []
        """Calls held as written blind (tool name, arguments), in order; each ran only if emitted again."""
        self.answer_now = False
        """The last model step's calls were all repeats: the next request gets no tools and
        ``ANSWER_NOW`` (see :meth:`next_step`)."""
        self._turn_calls: dict[tuple[str, str], Call] = {}
        self._turn_first = 0
        self._held_keys: set[tuple[str, str]] = set()
        self._step_repeats: list[bool] = []

    def _runtime(self, tools: Sequence[Tool], mode: Mode, options: dict[str, Any]) -> Runtime:
        """The conversation's runtime, decided as the ``Agent`` decides a session's: the grace
        policy gets the profile's cost priors, and async mode is shown as parallel when no
        tool is expected to be slow enough for a placeholder to pay (no text about futures,
        no ``await_future``; see :meth:`asyncfc.grace.Grace.futures_pay`)."""
        policy = grace_policy(
            options.pop("grace", "auto"),
            options.pop("grace_s", None),
            step_s=self.profile.step_s,
            prefill_token_s=self.profile.prefill_token_s,
        )
        return Runtime(tools, mode=policy.shown_mode(mode, tool_table(tools)), grace=policy, **options)

    @property
    def instructions(self) -> str:
        """The profile's instructions and the lines that explain placeholders; add them to
        the framework agent's instructions."""
        return "\n\n".join(p for p in (self.profile.instructions, self.runtime.instructions) if p)

    def example(self) -> list[Message]:
        """The profile's worked example in this runtime's mode form (empty without one): the
        messages to put before a conversation's first user message."""
        if self.profile.example is None:
            return []
        return list(self.profile.example(self.runtime.mode.shows_futures))

    def start_turn(self) -> None:
        """A new user turn begins: repeats are answered only from calls of the same turn, and
        only its calls can make a write blind."""
        self._turn_calls.clear()
        self._held_keys.clear()
        self._turn_first = len(self.calls)
        self._step_repeats.clear()
        self.answer_now = False

    def next_step(self) -> bool:
        """Called by the integration before a model request (any number of times for one
        request): whether that request must ask for the answer, offering no tools and adding
        ``ANSWER_NOW``, because every call made since the previous request repeated an earlier
        one (with a profile that answers repeats; the ``Agent`` does the same)."""
        if self._step_repeats:
            self.answer_now = self.profile.answer_repeats and all(self._step_repeats)
            self._step_repeats.clear()
        return self.answer_now

    def tool_specs(self) -> list[dict[str, Any]]:
        """OpenAI-format specs as the model must see them (widened schemas, ``await_future``)."""
        return self.runtime.tool_specs()

    async def call(
        self, name: str, arguments: str | Mapping[str, Any], tool_call_id: str | None = None
    ) -> str:
        """The tool-message text for one call the framework makes.

        With a profile that answers repeats, a call identical to an earlier one of this user
        turn (same tool, same arguments) is not run again: it gets that call's outcome."""
        key = (name, _canonical(arguments))
        repeats = self.profile.answer_repeats and name != AWAIT_TOOL
        earlier = self._turn_calls.get(key) if repeats else None
        self._step_repeats.append(earlier is not None)
        blockers = self._blind_to(name, arguments, key) if earlier is None else []
        if blockers:  # not run: the values come with this message, the model emits it again
            self._held_keys.add(key)
            self.held.append((name, key[1]))
            await self.runtime.wait_all(blockers)
            ready = self.runtime.take_ready()
            text = dumps(held_write([c.id for c in blockers]))
            return with_earlier(text, [self.runtime.deliver_json(c) for c in ready])
        reply = await self.runtime.call(name, arguments, tool_call_id, repeat_of=earlier)
        if reply.call is not None:
            self.calls.append(reply.call)
            if repeats and earlier is None and reply.call.error is None:
                self._turn_calls[key] = reply.call
        return reply.text

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

    def _blind_to(self, name: str, arguments: str | Mapping[str, Any], key: tuple[str, str]) -> list[Call]:
        """The pending results of this user turn a state-changing call may depend on but was
        written without (see :meth:`asyncfc.agent.Session`'s rule): empty unless holding is on,
        the tool writes, the call is not one held before (emitted again: confirmed) and passes
        no future on; results of write-only tools and repeats do not count."""
        tool = self.runtime.tools.get(name)
        if not self.hold_blind_writes or tool is None or not tool.writes or key in self._held_keys:
            return []
        pending = []
        for c in self.calls[self._turn_first :]:
            other = self.runtime.tools.get(c.name)
            write_only = other is not None and other.writes and not other.reads
            if c.delivered_at is None and c.repeat_of is None and not write_only:
                pending.append(c)
        if not pending:
            return []
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
        try:
            if references_in(raw, json.loads(raw or "{}")):
                return []
        except (ValueError, RecursionError):
            return []  # malformed: the runtime answers it with an error, it changes nothing
        return pending


def _canonical(arguments: str | Mapping[str, Any]) -> str:
    """One text per arguments object, whatever its key order and spacing."""
    try:
        parsed = json.loads(arguments or "{}") if isinstance(arguments, str) else arguments
        return json.dumps(parsed, sort_keys=True, default=repr)
    except (ValueError, TypeError, RecursionError):
        return str(arguments)


class HostedTools(Generic[T]):
    """A framework's tools (``tools``, of the framework's own type ``T``) over one hosted runtime.

    Give it asyncfc tools (it then owns its runtime; close it with ``await t.aclose()`` or
    ``async with``) or an existing ``runtime``; ``revise`` and ``max_revisions`` are the
    policy of the integration's ``run``, ``profile`` what the model needs (see
    :class:`HostedRuntime`). Subclasses build one framework tool per spec.
    """

    def __init__(
        self,
        tools: Sequence[Tool] | None = None,
        *,
        runtime: Runtime | None = None,
        revise: Revise = "when_needed",
        max_revisions: int = 1,
        profile: ModelProfile | None = None,
        **runtime_options: Any,
    ) -> None:
        self.host = HostedRuntime(
            tools,
            runtime=runtime,
            revise=revise,
            max_revisions=max_revisions,
            profile=profile,
            **runtime_options,
        )
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
        """The profile's instructions and the lines that explain placeholders (see
        :attr:`HostedRuntime.instructions`): add them to the agent's instructions."""
        return self.host.instructions

    async def aclose(self) -> None:
        """Close the runtime if these tools created it (pending calls are cancelled)."""
        await self.host.aclose()

    async def __aenter__(self: _S) -> _S:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
