"""asyncfc: future-based asynchronous function calling for LLM agents, without model changes.

Every tool call returns a symbolic future at once while the tool runs in the background;
a scheduler runs calls in parallel where data dependencies and read/write sets allow;
resolved values reach the model at turn boundaries or through the ``await_future`` tool.
"""

from .agent import Agent, Delivery, RunResult, Session
from .errors import (
    AsyncFCError,
    CallError,
    ConfigurationError,
    ErrorKind,
    LocalModelError,
    ModelError,
    SessionBusyError,
    SessionClosedError,
    ToolDefinitionError,
    UsageError,
)
from .mode import Mode
from .model_text import ASYNC_INSTRUCTIONS
from .runtime import Reply, Runtime
from .scheduler import Call
from .tools import Tool, tool, tool_from_schema
from .trace import Trace, plot_timeline

__all__ = [
    "ASYNC_INSTRUCTIONS",
    "Agent",
    "AsyncFCError",
    "Call",
    "CallError",
    "ConfigurationError",
    "Delivery",
    "ErrorKind",
    "LocalModelError",
    "Mode",
    "ModelError",
    "Reply",
    "RunResult",
    "Runtime",
    "Session",
    "SessionBusyError",
    "SessionClosedError",
    "Tool",
    "ToolDefinitionError",
    "Trace",
    "UsageError",
    "plot_timeline",
    "tool",
    "tool_from_schema",
]
