"""Model protocol and adapters."""

from .base import (
    Message,
    Model,
    ModelEvent,
    ModelRequest,
    ModelResponse,
    ResponseDone,
    TextDelta,
    ToolCall,
    ToolCallReady,
    Usage,
    complete,
)
from .scripted import Call, Ref, ScriptedModel

__all__ = [
    "Call",
    "Message",
    "Model",
    "ModelEvent",
    "ModelRequest",
    "ModelResponse",
    "Ref",
    "ResponseDone",
    "ScriptedModel",
    "TextDelta",
    "ToolCall",
    "ToolCallReady",
    "Usage",
    "complete",
]
