"""asyncfc: future-based asynchronous function calling for LLM agents."""

from .errors import AsyncFCError, CallError, ErrorKind, ModelError, SessionClosedError, StepLimitError, ToolDefinitionError
from .tools import Tool, tool, tool_from_schema

__all__ = [
    "AsyncFCError",
    "CallError",
    "ErrorKind",
    "ModelError",
    "SessionClosedError",
    "StepLimitError",
    "Tool",
    "ToolDefinitionError",
    "tool",
    "tool_from_schema",
]
