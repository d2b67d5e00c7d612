"""The model protocol: one request in, a stream of events out.

Messages use one neutral, OpenAI-like shape; adapters translate it to their wire format
(chat completions, Anthropic messages). Adapters know protocols, not scheduling: they
report each tool call the moment its arguments are complete (:class:`ToolCallReady`), and
the agent decides whether to dispatch it then (early dispatch) or at the end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Union, runtime_checkable

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
    tool_calls: list[ToolCall] = field(default_factory=list)
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


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


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
    raise RuntimeError(f"model {model.name!r} ended its stream without a response")
