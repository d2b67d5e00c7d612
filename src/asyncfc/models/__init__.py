"""Model protocol and adapters.

The SDK-backed adapters are imported on first use, so
``import asyncfc`` stays fast for users of only one protocol.
"""

from typing import TYPE_CHECKING, Any

from .base import (
    Message,
    Model,
    ModelEvent,
    ModelProfile,
    ModelRequest,
    ModelResponse,
    ResponseDone,
    TextDelta,
    ToolCall,
    ToolCallReady,
    Usage,
    complete,
)

if TYPE_CHECKING:
    from .anthropic_messages import AnthropicMessagesModel
    from .openai_chat import OpenAIChatModel
    from .openai_responses import OpenAIResponsesModel
    from .text_calls import parse_text_calls

_LAZY = {
    "AnthropicMessagesModel": "anthropic_messages",
    "OpenAIChatModel": "openai_chat",
    "OpenAIResponsesModel": "openai_responses",
    "parse_text_calls": "text_calls",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AnthropicMessagesModel",
    "Message",
    "Model",
    "ModelEvent",
    "ModelProfile",
    "ModelRequest",
    "ModelResponse",
    "OpenAIChatModel",
    "OpenAIResponsesModel",
    "ResponseDone",
    "TextDelta",
    "ToolCall",
    "ToolCallReady",
    "Usage",
    "complete",
    "parse_text_calls",
]
