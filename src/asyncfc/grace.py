"""When an async-mode call is answered with its value, and when with a placeholder.

:meth:`asyncfc.runtime.Runtime.answer` asks the runtime's *grace policy* how long it may
wait for a call's value before it answers with a placeholder. Two policies:

* :class:`FixedWindow` (``grace=0.5`` or ``grace_s=0.5``): wait until ``seconds`` after the
  call was emitted, whatever the call or the model.
* :class:`CostAware` (``grace="auto"``, the default): wait only when waiting is cheaper
  than what a placeholder will cost the model later.

The cost-aware rule
-------------------
Waiting for a call delays the next model step by the time ``r`` the call still needs. A
placeholder delays nothing now but costs the model later:

* the tokens it reads: the placeholder, then the delivery that carries the value
  (``tokens x prefill seconds per token``, measured);
* when the model needs the value, an ``await_future`` step, after which it waits for the
  value anyway: it gets on after ``max(s, r)``, where ``s`` is the cost of a step that
  only emits an await call (the mean prefill of recent steps plus the decode of an await
  call, measured). How often that happens is the share of placeholders followed by an
  await step in this conversation (learned, from a prior of ``await_share``).

That expectation, ``C = tokens x seconds per token + share x max(s, r)``, is the
*placeholder cost*. The call's remaining time ``r`` is predicted from
its tool's latency: the mean of its finished runs (an exponentially weighted moving average
of ``finished_at - started_at``, weight ``smoothing`` on the newest run), or before any run
finished, the tool's declared hint (``@tool(latency_s=...)``). Then, with
``budget = min(C, cap_s)``:

* ``r <= budget``: wait, at most ``budget`` from now (a slower run than usual still gets a
  placeholder once waiting has cost as much as the placeholder would);
* ``r > budget``: a placeholder at once (a tool that was slow last time is not waited for,
  unless nearly every placeholder is awaited: then waiting costs no more than awaiting);
* ``r`` unknown (no hint, no finished run yet): wait until ``budget`` (with ``r = 0``)
  after the call was emitted, the classic rent-or-buy choice, which never pays more than
  twice the better of the two choices in hindsight. Once a run of the tool has outlasted
  that wait (it got a placeholder while running), the tool is known to be slow: its next
  calls get a placeholder at once until a run finishes and gives it a latency. (Without
  this the demo's three weather lookups of 5 s each waited about a second apiece.)

Before a conversation starts, :meth:`Grace.futures_pay` asks the same question of every
tool at once: when none is expected to be slow enough for a placeholder, asyncfc's own
:class:`~asyncfc.agent.Agent` shows that conversation no futures at all (parallel mode), so
the model reads no instructions, ``await_future`` or references for nothing.

The model's costs come from the steps the trace recorded (:meth:`asyncfc.trace.Trace.model_step`,
their :class:`~asyncfc.models.base.Usage` timings): asyncfc's own :class:`~asyncfc.agent.Agent`
records every step before it answers that step's calls, so even the first calls are
decided from a measurement. Hosts that see no model steps (the MCP proxy, framework
toolsets) use the prior ``step_s`` instead; with the defaults (a 1 s step, half of the
placeholders awaited) that is a 0.5 s window for tools of unknown latency, the old fixed
default, and no wait for tools known to be slower.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, Union

from .errors import ConfigurationError, ErrorKind, check_number
from .futures import dumps
from .mode import Mode
from .model_text import AWAIT_TOOL, EARLIER, placeholder, resolved
from .models.base import Usage
from .scheduler import Call
from .tools import Tool
from .trace import Trace

__all__ = [
    "DEFAULT_CAP_S",
    "DEFAULT_GRACE_S",
    "DEFAULT_STEP_S",
    "CostAware",
    "Decision",
    "FixedWindow",
    "Grace",
    "GraceHost",
    "GraceOption",
    "ModelCost",
    "grace_policy",
]

DEFAULT_GRACE_S = 0.5
"""The fixed window's usual length (seconds), and what the cost-aware policy amounts to
for tools of unknown latency when no model step is measured.

Chosen by measurement on the embedded model: a placeholder for a quick call (a database
read, a file write, an email: 0.05-0.3 s) costs the model an extra step to await it (2-4 s
on a CPU, about a second on hosted models), far more than waiting half a second."""

DEFAULT_CAP_S = 2.0
"""The cost-aware policy never waits longer than this for one call (seconds)."""

DEFAULT_STEP_S = 1.0
"""The prior cost of an extra model step (seconds) while no step has been measured."""

CHARS_PER_TOKEN = 2.7
"""Characters per token of asyncfc's JSON texts (Qwen2.5's tokenizer: the 40 characters of a
placeholder are 15 tokens; quotes and braces are tokens of their own)."""


def text_tokens(text: str) -> int:
    """About how many tokens ``text`` is (:data:`CHARS_PER_TOKEN`)."""
    return max(1, round(len(text) / CHARS_PER_TOKEN))


AWAIT_CALL_TOKENS = text_tokens(dumps({"name": AWAIT_TOOL, "arguments": {"ids": ["fut_100"]}}))
"""Output tokens of one ``await_future`` call, as the model writes it."""

DELIVERY_TOKENS = text_tokens(dumps({EARLIER: [resolved("fut_100", None)]})) - text_tokens("{null}")
"""Tokens a delivery adds around a value riding along a later tool message (the value
itself is read either way)."""

_PRIOR_WEIGHT = 2.0
"""How many placeholders the prior ``await_share`` counts as."""


class GraceHost(Protocol):
    """What a policy reads from its runtime (:class:`asyncfc.runtime.Runtime` is one)."""

    trace: Trace

    @property
    def tools(self) -> Mapping[str, Tool]: ...

    @property
    def calls(self) -> list[Call]: ...


class Grace(ABC):
    """A grace policy: until when :meth:`~asyncfc.runtime.Runtime.answer` waits for a value.

    The runtime tells it what happened (:meth:`finished`, :meth:`placeheld`,
    :meth:`awaited`), so a policy can learn; the fixed window ignores all of it.
    """

    @abstractmethod
    def until(self, call: Call, host: GraceHost) -> float:
        """Trace time until which to wait for ``call``'s value (in the past: answer now)."""

    def futures_pay(self, tools: Mapping[str, Tool]) -> bool:
        """Whether a conversation over ``tools`` should be shown futures at all: asked once,
        when it starts (its tool specs and instructions are a fixed, cached prefix)."""
        return True  # the default: a policy may answer with a placeholder whatever the tool

    def shown_mode(self, mode: Mode, tools: Mapping[str, Tool]) -> Mode:
        """The mode a new conversation in ``mode`` shows the model: async mode is shown as
        parallel when no call over ``tools`` is expected to pay for a placeholder
        (:meth:`futures_pay`); calls still run as in async mode."""
        if mode.shows_futures and not self.futures_pay(tools):
            return Mode.PARALLEL
        return mode

    def finished(self, call: Call) -> None:
        """A call resolved (ran, failed or was cancelled)."""
        return  # the default: nothing to learn

    def placeheld(self, call: Call) -> None:
        """A call was answered with a placeholder."""
        return  # the default: nothing to learn

    def awaited(self, calls: Sequence[Call]) -> None:
        """The model spent a step awaiting these calls (``await_future``)."""
        return  # the default: nothing to learn


class FixedWindow(Grace):
    """Wait until ``seconds`` after the call was emitted (``grace_s``)."""

    def __init__(self, seconds: float = DEFAULT_GRACE_S) -> None:
        check_number("grace_s", seconds, 0)
        self.seconds = float(seconds)

    def until(self, call: Call, host: GraceHost) -> float:
        return call.emitted_at + self.seconds

    def __repr__(self) -> str:
        return f"FixedWindow({self.seconds:g})"


@dataclass(frozen=True)
class ModelCost:
    """What the model's recent steps say an extra step and an extra token cost."""

    step_s: float
    """An extra step that only emits an ``await_future`` call."""
    prefill_token_s: float
    """Reading one more prompt token (0 when not measured)."""
    measured_steps: int
    """Steps these figures come from (0: the priors)."""


@dataclass(frozen=True)
class Decision:
    """One call's grace decision, with its inputs (for tests, traces and debugging)."""

    until: float
    """Trace time until which to wait (``<= now``: a placeholder at once)."""
    remaining_s: float | None
    """Predicted seconds until the value is there (None: unknown latency)."""
    placeholder_s: float
    """What a placeholder is expected to cost the model, in seconds."""
    budget_s: float
    """``min(placeholder_s, cap_s)``: the most this call may be waited for."""
    reason: Literal["done", "fast", "slow", "unknown"]


class CostAware(Grace):
    """Wait for a call only when that is cheaper than a placeholder (``grace="auto"``).

    See the module docstring for the rule. ``cap_s`` bounds every wait; ``step_s``,
    ``prefill_token_s`` and ``await_share`` are the priors for the cost of an extra model
    step, of a prompt token and the share of placeholders the model awaits, used until
    they are measured;
    ``smoothing`` is the weight of a tool's newest run in its latency estimate; ``steps``
    how many recent model steps the costs come from. One instance learns for every
    runtime it is given to (the ``"auto"`` option makes one per agent, or per runtime for
    other hosts).
    """

    def __init__(
        self,
        *,
        cap_s: float = DEFAULT_CAP_S,
        step_s: float = DEFAULT_STEP_S,
        prefill_token_s: float = 0.0,
        await_share: float = 0.5,
        smoothing: float = 0.5,
        steps: int = 8,
    ) -> None:
        check_number("cap_s", cap_s, 0)
        check_number("step_s", step_s, 0)
        check_number("prefill_token_s", prefill_token_s, 0)
        check_number("await_share", await_share, 0)
        check_number("smoothing", smoothing, 0, above=True)
        check_number("steps", steps, 1, integer=True)
        if await_share > 1 or smoothing > 1:
            raise ConfigurationError(
                f"await_share and smoothing must be at most 1, got {await_share!r} and {smoothing!r}"
            )
        self.cap_s = float(cap_s)
        self.step_s = float(step_s)
        self.prefill_token_s = float(prefill_token_s)
        self.await_share = float(await_share)
        self.smoothing = float(smoothing)
        self.steps = steps
        self.latencies: dict[str, float] = {}
        """Learned seconds per tool name (the moving average of its finished runs)."""
        self.placeholders = 0
        self.awaits = 0
        self.outlasted: set[str] = set()
        """Tools of unknown latency a run of which got a placeholder while running: slow."""
        self._tokens: dict[str, int] = {}
        """Placeholder tokens per tool (its output example decides): counted once."""
        self.measured: ModelCost | None = None
        """The model's cost as last measured: a new conversation starts from it, not the priors."""
        self._cost: tuple[tuple[int, int], ModelCost] | None = None
        """The last model cost, by (steps, id of the newest step's usage): a burst of calls
        after one step costs one computation."""

    # -- what it learns -------------------------------------------------------------

    def observe(self, tool: str, seconds: float) -> None:
        """Learn one run of ``tool`` that took ``seconds``."""
        seconds = max(0.0, float(seconds))
        old = self.latencies.get(tool)
        self.latencies[tool] = seconds if old is None else old + self.smoothing * (seconds - old)

    def finished(self, call: Call) -> None:
        if not call.ran or call.started_at is None or call.finished_at is None:
            return  # answered without running (a repeat, a malformed call): says nothing of the tool
        if call.error is not None and call.error.kind is ErrorKind.CANCELLED:
            return  # stopped from outside: its duration is not the tool's
        self.observe(call.name, call.finished_at - call.started_at)

    def placeheld(self, call: Call) -> None:
        self.placeholders += 1
        if call.started_at is not None and not call.done:
            self.outlasted.add(call.name)

    def awaited(self, calls: Sequence[Call]) -> None:
        if calls:
            self.awaits += 1

    @property
    def share_awaited(self) -> float:
        """The expected share of placeholders that cost an extra await step."""
        prior = _PRIOR_WEIGHT * self.await_share
        return min(1.0, (self.awaits + prior) / (self.placeholders + _PRIOR_WEIGHT))

    def latency(self, name: str, tool: Tool | None = None) -> float | None:
        """The expected seconds of one run of ``name``: learned, else the tool's hint, else None."""
        learned = self.latencies.get(name)
        if learned is not None:
            return learned
        return tool.latency_s if tool is not None else None

    # -- what things cost -----------------------------------------------------------

    def model_cost(self, usages: Sequence[Usage]) -> ModelCost:
        """An extra step's and an extra prompt token's cost, from recent steps' timings."""
        timed = [u for u in usages[-self.steps :] if u.timing]
        if not timed:
            return self.measured or ModelCost(self.step_s, self.prefill_token_s, 0)
        prefill = sum(u.prefill_s for u in timed)
        uncached = sum(u.uncached_input_tokens for u in timed)
        out_tokens = sum(u.output_tokens for u in timed)
        per_output = sum(u.decode_s for u in timed) / out_tokens if out_tokens else 0.0
        step = prefill / len(timed) + AWAIT_CALL_TOKENS * per_output
        self.measured = ModelCost(step, prefill / uncached if uncached else 0.0, len(timed))
        return self.measured

    def placeholder_tokens(self, name: str, tool: Tool | None) -> int:
        """Tokens of a placeholder for a call of ``name`` (its output example adds field
        references), counted once per tool."""
        tokens = self._tokens.get(name)
        if tokens is None:
            example = tool.output_example if tool is not None else None
            tokens = self._tokens[name] = text_tokens(dumps(placeholder("fut_100", example)))
        return tokens

    def placeholder_cost(self, cost: ModelCost, placeholder_tokens: int, remaining_s: float = 0.0) -> float:
        """Seconds until the model gets on after a placeholder of ``placeholder_tokens`` tokens
        for a call with ``remaining_s`` to go, in expectation: the tokens it reads, and when it
        awaits the value, an await step that ends when the step or the call does, whichever
        is later."""
        tokens = placeholder_tokens + DELIVERY_TOKENS
        return tokens * cost.prefill_token_s + self.share_awaited * max(cost.step_s, remaining_s)

    def remaining(
        self, call: Call, now: float, tools: Mapping[str, Tool], calls: Sequence[Call], depth: int = 3
    ) -> float | None:
        """Predicted seconds until ``call`` resolves (None: a latency on the way is unknown).

        A call still waiting for other calls (references, read/write hazards) first waits
        for the latest of them (followed ``depth`` calls back)."""
        if call.done:
            return 0.0
        run = self.latency(call.name, tools.get(call.name))
        if run is None:
            return None
        if call.started_at is not None:
            return max(0.0, call.started_at + run - now)
        before = 0.0
        for seq in {*call.deps, *call.waited_for}:
            if not 0 < seq <= len(calls) or seq == call.seq:
                continue
            if depth <= 0:
                return None
            wait = self.remaining(calls[seq - 1], now, tools, calls, depth - 1)
            if wait is None:
                return None
            before = max(before, wait)
        return before + run

    # -- the decision ----------------------------------------------------------------

    def decide(
        self,
        call: Call,
        *,
        now: float,
        usages: Sequence[Usage] = (),
        tools: Mapping[str, Tool] | None = None,
        calls: Sequence[Call] = (),
    ) -> Decision:
        """The decision for ``call`` at trace time ``now``, from the given model steps'
        usages, tool table (for hints and output examples) and the session's calls."""
        tools = tools or {}
        tokens = self.placeholder_tokens(call.name, tools.get(call.name))
        key = (len(usages), id(usages[-1]) if usages else 0)
        if self._cost is not None and self._cost[0] == key:
            model = self._cost[1]
        else:
            model = self.model_cost(usages)
            self._cost = (key, model)
        if call.done:
            cost = self.placeholder_cost(model, tokens)
            return Decision(now, 0.0, cost, min(cost, self.cap_s), "done")
        left = self.remaining(call, now, tools, calls)
        cost = self.placeholder_cost(model, tokens, left or 0.0)
        budget = min(cost, self.cap_s)
        if left is None:
            if call.name in self.outlasted:
                return Decision(now, None, cost, budget, "slow")
            return Decision(call.emitted_at + budget, None, cost, budget, "unknown")
        if left <= budget:
            return Decision(now + budget, left, cost, budget, "fast")
        return Decision(now, left, cost, budget, "slow")

    def futures_pay(self, tools: Mapping[str, Tool]) -> bool:
        """False when every tool is expected to finish within what a placeholder for it would
        cost (its latency learned, or declared with ``@tool(latency_s=...)``), priced with the
        model's last measured cost or the priors: then no call would get a placeholder, and
        the instructions, the ``await_future`` tool and the references in the schemas would
        be read for nothing. A tool of unknown latency may be slow: True."""
        model = self.model_cost(())
        for name, tool in tools.items():
            run = self.latency(name, tool)
            if run is None:
                return True
            cost = self.placeholder_cost(model, self.placeholder_tokens(name, tool), run)
            if run > min(cost, self.cap_s):
                return True
        return False

    def until(self, call: Call, host: GraceHost) -> float:
        trace = host.trace
        return self.decide(
            call,
            now=trace.now(),
            usages=trace.recent_usages(self.steps),
            tools=host.tools,
            calls=host.calls,
        ).until

    def __repr__(self) -> str:
        return f"CostAware(cap_s={self.cap_s:g}, step_s={self.step_s:g}, await_share={self.await_share:g})"


GraceOption = Union[float, Literal["auto"], Grace]
"""What ``grace=`` accepts: ``"auto"`` (:class:`CostAware`), seconds (:class:`FixedWindow`)
or a policy object."""


def grace_policy(
    grace: GraceOption = "auto",
    grace_s: float | None = None,
    *,
    step_s: float | None = None,
    prefill_token_s: float | None = None,
) -> Grace:
    """The policy the options ``grace`` and ``grace_s`` select, or a :class:`ConfigurationError`.

    ``grace_s`` (seconds) is the fixed window, the older spelling of ``grace=<seconds>``;
    giving it together with a ``grace`` other than ``"auto"`` is an error. A policy object
    is used as it is (shared, with what it learns, by every runtime it is given to).
    ``step_s`` and ``prefill_token_s`` are the model's cost priors for ``"auto"`` (a
    :class:`~asyncfc.models.base.ModelProfile`'s; None: the defaults).
    """
    if grace_s is not None:
        if not (isinstance(grace, str) and grace == "auto"):
            raise ConfigurationError(
                f"give grace_s or grace, not both (grace_s={grace_s!r}, grace={grace!r})"
            )
        return FixedWindow(grace_s)
    if isinstance(grace, Grace):
        return grace
    if isinstance(grace, str):
        if grace == "auto":
            return CostAware(
                step_s=DEFAULT_STEP_S if step_s is None else step_s,
                prefill_token_s=prefill_token_s or 0.0,
            )
        raise ConfigurationError(
            f"grace must be 'auto', a number of seconds of at least 0 or a Grace policy, got {grace!r}"
        )
    check_number("grace", grace, 0)
    return FixedWindow(grace)
