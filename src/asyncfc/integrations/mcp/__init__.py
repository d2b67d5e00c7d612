"""The MCP proxy: ``asyncfc mcp serve`` puts asyncfc's futures and scheduler in front of
any MCP server, so every MCP client (Claude Desktop, IDE agents, PydanticAI, the OpenAI
Agents SDK) gets asynchronous calls without changing anything on its side.

Needs the ``mcp`` extra (``pip install 'asyncfc[mcp]'``).
"""

from .annotations import AnnotationsFile, ToolAnnotation, load_annotations, parse_annotations
from .server import Proxy, ProxyConfig, serve
from .tasks import TASKS_EXTENSION, TaskBoard, UpstreamTasks
from .upstream import (
    UpstreamPool,
    UpstreamSpec,
    UpstreamToolError,
    UpstreamUnavailable,
    parse_upstream,
    result_value,
)

__all__ = [
    "TASKS_EXTENSION",
    "AnnotationsFile",
    "Proxy",
    "ProxyConfig",
    "TaskBoard",
    "ToolAnnotation",
    "UpstreamPool",
    "UpstreamSpec",
    "UpstreamTasks",
    "UpstreamToolError",
    "UpstreamUnavailable",
    "load_annotations",
    "parse_annotations",
    "parse_upstream",
    "result_value",
    "serve",
]
