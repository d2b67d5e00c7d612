"""The model protocol: one request in, a stream of events out.

Messages use one neutral, OpenAI-like shape; adapters translate it to their wire format
(chat completions, Anthropic messages). Adapters know protocols, not scheduling: they
report each tool call the moment its arguments are complete (:class:`ToolCallReady`), and
the agent decides whether to dispatch it then (early dispatch) or at the end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Union, runtime_checkable

from ..errors import ModelError

__all__ = [
    "Message",
    "Model",
    "ModelEvent",
    "ModelProfile",
    "ModelRequest",
    "ModelResponse",
    "ResponseDone",
    "Role",
    "TextDelta",
    "Timing",
    "ToolCall",
    "ToolCallReady",
    "Usage",
    "complete",
]

Role = Literal["system", "user", "assistant", "tool"]


@dataclass
class ToolCall:
    """One call as the model wrote it; ``arguments`` is the raw JSON text (untrusted)."""

    id: str
    name: str
    arguments: str


@dataclass
class Message:
    """One chat message. Tool messages answer the call named by ``tool_call_id``."""

    role: Role
    content: str = ""
    tool_calls: Sequence[ToolCall] = ()
    """A shared empty tuple unless the message has calls: most messages have none, and a
    long-running process holds thousands of them."""
    tool_call_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in self.tool_calls
            ]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


@dataclass(frozen=True)
class ModelRequest:
    """What the agent asks of a model for one step."""

    messages: Sequence[Message]
    tools: Sequence[dict[str, Any]]
    """Tool specs in OpenAI function format: ``{"name", "description", "parameters"}``."""
    parallel_tool_calls: bool = True
    stream: bool = True
    tool_choice: Literal["auto", "none"] = "auto"
    """``"none"``: the tools stay in the prompt but the model must answer in text (each
    adapter sends its API's ``tool_choice`` none). Dropping the tools instead would change
    the prompt's prefix (a chat template renders them in the system message), so the
    provider's prompt cache would be lost for the whole conversation."""


Timing = Literal["", "server", "estimated"]
"""Where :attr:`Usage.prefill_s`/:attr:`Usage.decode_s` came from: nowhere, the server's own
timings (llama-server's ``timings``), or the client's clock (time to first token, then the rest)."""


@dataclass
class Usage:
    """What one model step cost, or (summed with ``+``/:meth:`total`) what a run cost.

    ``input_tokens`` counts the whole prompt, cached part included (OpenAI's
    ``prompt_tokens``; for Anthropic, ``input_tokens`` + cache reads + cache writes), so
    ``uncached_input_tokens`` is what the model had to process again: the price of
    editing history or of a longer prompt.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    """Prompt tokens served from the provider's prefix cache (not processed again)."""
    cache_write_tokens: int = 0
    """Prompt tokens written to the cache at a price (Anthropic's ``cache_creation_input_tokens``)."""
    prefill_s: float = 0.0
    """Prompt-processing time (until the first output token)."""
    decode_s: float = 0.0
    """Output-generation time (after the first token)."""
    timing: Timing = ""
    steps: int = 1
    """Model steps summed into this usage (1 for one response)."""

    @property
    def uncached_input_tokens(self) -> int:
        """Prompt tokens the model processed for this request (not found in the cache)."""
        return max(0, self.input_tokens - self.cached_input_tokens)

    @property
    def cache_hit_rate(self) -> float:
        """Share of prompt tokens served from the cache (0 when there was no prompt)."""
        return self.cached_input_tokens / self.input_tokens if self.input_tokens else 0.0

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        timings = {self.timing, other.timing} - {""}
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            prefill_s=self.prefill_s + other.prefill_s,
            decode_s=self.decode_s + other.decode_s,
            # a sum that mixes server-timed and estimated steps is only an estimate
            timing=timings.pop() if len(timings) == 1 else ("estimated" if timings else ""),
            steps=self.steps + other.steps,
        )

    @classmethod
    def total(cls, usages: Iterable[Usage]) -> Usage:
        """The sum of many usages (zero steps when there are none)."""
        out = cls(steps=0)
        for u in usages:
            out = out + u
        return out

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-ready figures, the derived ones included, for reports and benchmarks."""
        return {
            "steps": self.steps,
            "prompt_tokens": self.input_tokens,
            "cached_prompt_tokens": self.cached_input_tokens,
            "uncached_prompt_tokens": self.uncached_input_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "output_tokens": self.output_tokens,
            "prefill_s": round(self.prefill_s, 6),
            "decode_s": round(self.decode_s, 6),
            "timing": self.timing,
        }

    def estimate_timing(self, ttft_s: float | None, duration_s: float) -> None:
        """Fill in prefill/decode from the client's clock when the server gave no timings.

        Prefill is taken as the time to the first token (it includes the network and any
        queueing, so it is an upper bound), decode as the rest of the response.
        """
        if self.timing or ttft_s is None:
            return
        ttft = min(max(ttft_s, 0.0), duration_s)
        self.prefill_s, self.decode_s, self.timing = ttft, max(0.0, duration_s - ttft), "estimated"


@dataclass
class ModelResponse:
    """A whole model step: its text, its calls and how long it took."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = "stop"
    ttft_s: float | None = None
    """Time to the first streamed token (None when not streamed)."""
    duration_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    """Things the adapter had to repair, e.g. tool calls recovered from text."""


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallReady:
    """A call whose arguments are complete: it may be dispatched now."""

    call: ToolCall


@dataclass(frozen=True)
class ResponseDone:
    response: ModelResponse


ModelEvent = Union[TextDelta, ToolCallReady, ResponseDone]


@dataclass(frozen=True)
class ModelProfile:
    """What one model needs to do multi-step tool tasks well, applied alike in every mode.

    A model may carry one as its ``profile`` attribute; the agent then adds the profile's
    instructions to the system message and its worked example before the conversation
    (a fixed prefix, so the provider's prompt cache keeps it), and answers a call that
    repeats an earlier identical one in the same user turn from that call instead of
    running it again; after a step made only of such repeats, the next step may call no
    tool (``tool_choice`` none, the tools still shown so the prompt cache holds) and is
    asked for the answer, so the model answers instead of looping.
    """

    instructions: str = ""
    example: Callable[[bool], Sequence[Message]] | None = None
    """A finished example task as messages, in its sync (False) or async (True) form."""
    answer_repeats: bool = False
    step_s: float | None = None
    """What an extra step (the prompt read again, an ``await_future`` call written) costs on
    this model, in seconds, until the conversation measures it (None: the grace policy's prior)."""
    prefill_token_s: float | None = None
    """What reading one more prompt token costs, in seconds, until measured (None: not priced)."""


@runtime_checkable
class Model(Protocol):
    """Anything that answers a :class:`ModelRequest` with a stream of :class:`ModelEvent`.

    The stream ends with exactly one :class:`ResponseDone`. Every call in the final
    response is announced by a :class:`ToolCallReady` before it, in order.
    """

    name: str

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]: ...


async def complete(model: Model, request: ModelRequest) -> ModelResponse:
    """Run a request to the end and return only the final response."""
    async for event in model.stream(request):
        if isinstance(event, ResponseDone):
            return event.response
    raise ModelError(f"model {model.name!r} ended its stream without a response")
