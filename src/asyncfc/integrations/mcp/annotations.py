"""Read/write sets for upstream MCP tools: from MCP tool annotations, overridden by a TOML file.

Defaults come from the hints every MCP server may publish: ``readOnlyHint: true`` reads
only the server's label; any other annotations write it; a tool without annotations
reads and writes the root (it runs alone, in program order). The file refines that per
tool. Its labels are relative to the server's label (``files/{path}`` on server ``fs`` is
``fs/files/{path}``), so a refined tool still conflicts with the server's unrefined ones;
a label that starts with ``/`` is absolute (state shared between servers, ``/`` alone is
the root)::

    [servers.fs]
    label = "disk"             # the server's label (default: its name)

    [tools.write_file]         # a tool's name as the proxy lists it, or "server.tool"
    writes = ["files/{path}"]  # templated from the call's arguments
    reads = []
    timeout = 5                # seconds
    output_example = {bytes = 0, path = ""}

    [tools.lookup]
    pure = true                # touches no state at all
"""

from __future__ import annotations

import importlib
import string
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import mcp.types as mt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ...errors import ConfigurationError
from ...tools import ROOT

__all__ = [
    "AnnotationsFile",
    "ServerAnnotation",
    "ToolAnnotation",
    "load_annotations",
    "parse_annotations",
]


class ToolAnnotation(BaseModel):
    """One ``[tools.NAME]`` table."""

    model_config = ConfigDict(extra="forbid")

    reads: list[str] | None = None
    writes: list[str] | None = None
    pure: bool = False
    output_example: Any = None
    timeout: float | None = Field(default=None, gt=0)
    idempotent: bool | None = None

    @model_validator(mode="after")
    def _pure_alone(self) -> ToolAnnotation:
        if self.pure and (self.reads or self.writes):
            raise ValueError("pure = true contradicts reads/writes")
        return self


class ServerAnnotation(BaseModel):
    """One ``[servers.NAME]`` table."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = None


class AnnotationsFile(BaseModel):
    """The whole ``--annotations`` file."""

    model_config = ConfigDict(extra="forbid")

    servers: dict[str, ServerAnnotation] = Field(default_factory=dict)
    tools: dict[str, ToolAnnotation] = Field(default_factory=dict)

    def server_label(self, server: str) -> str:
        entry = self.servers.get(server)
        label = entry.label if entry is not None and entry.label is not None else server
        return label.strip("/")

    def key_for(self, server: str, upstream_name: str, exposed_name: str) -> str | None:
        """``server.tool`` wins over the name the proxy lists, which wins over the upstream name."""
        for key in (f"{server}.{upstream_name}", exposed_name, upstream_name):
            if key in self.tools:
                return key
        return None

    def for_tool(self, server: str, upstream_name: str, exposed_name: str) -> ToolAnnotation | None:
        key = self.key_for(server, upstream_name, exposed_name)
        return self.tools[key] if key is not None else None


def _toml_loads() -> Callable[[str], dict[str, Any]]:
    """``tomllib`` (3.11+) or ``tomli`` (the ``mcp`` extra installs it on 3.10)."""
    module = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")
    loads: Callable[[str], dict[str, Any]] = module.loads
    return loads


def load_annotations(path: str | Path | None) -> AnnotationsFile:
    """Parse and check an annotations file; ``None`` gives the empty one."""
    if path is None:
        return AnnotationsFile()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read annotations file {path}: {exc}") from exc
    return parse_annotations(text, source=str(path))


def parse_annotations(text: str, *, source: str = "annotations") -> AnnotationsFile:
    try:
        data = _toml_loads()(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise ConfigurationError(f"{source}: not valid TOML: {exc}") from exc
    try:
        return AnnotationsFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigurationError(f"{source}: {problems}") from None


def _absolute(label: str, server_label: str) -> str:
    if label.startswith("/"):
        return label.strip("/") or ROOT
    label = label.strip("/")
    if not server_label:
        return label
    return f"{server_label}/{label}" if label else server_label


def _check_template(label: str, properties: Mapping[str, Any], tool: str) -> None:
    try:
        fields = [name for _lit, name, _spec, _conv in string.Formatter().parse(label) if name is not None]
    except ValueError as exc:
        raise ConfigurationError(f"tool {tool!r}: bad label template {label!r}: {exc}") from None
    unknown = [f for f in fields if f not in properties]
    if unknown:
        raise ConfigurationError(
            f"tool {tool!r}: label {label!r} names {', '.join(unknown)}, not a parameter "
            f"(parameters: {', '.join(properties) or 'none'})"
        )


def _example_from_schema(output_schema: Mapping[str, Any] | None) -> Any:
    """A structured placeholder's shape from an object output schema (not a wrapped scalar)."""
    if not output_schema or output_schema.get("type") != "object":
        return None
    props = output_schema.get("properties")
    if not isinstance(props, Mapping) or not props or set(props) == {"result"}:
        return None
    return {str(k): None for k in props}


def tool_options(
    server: str,
    tool: mt.Tool,
    exposed_name: str,
    annotations: AnnotationsFile,
) -> dict[str, Any]:
    """Keyword arguments for :func:`asyncfc.tool_from_schema` for one upstream tool."""
    label = annotations.server_label(server)
    override = annotations.for_tool(server, tool.name, exposed_name)
    hints = tool.annotations
    opts: dict[str, Any] = {"output_example": _example_from_schema(tool.output_schema)}
    if hints is not None and hints.idempotent_hint:
        opts["idempotent"] = True
    if hints is None:
        reads: list[str] | None = None
        writes: list[str] | None = None
    elif hints.read_only_hint:
        reads, writes = [label], []
    else:
        reads, writes = [label], [label]
    if override is not None:
        properties = tool.input_schema.get("properties") or {}
        if override.pure:
            opts["pure"] = True
            reads = writes = None
        elif override.reads is not None or override.writes is not None:
            for t in [*(override.reads or []), *(override.writes or [])]:
                _check_template(t, properties, exposed_name)
            reads = [_absolute(t, label) for t in override.reads or []]
            writes = [_absolute(t, label) for t in override.writes or []]
        if override.output_example is not None:
            opts["output_example"] = override.output_example
        if override.timeout is not None:
            opts["timeout"] = override.timeout
        if override.idempotent is not None:
            opts["idempotent"] = override.idempotent
    if not opts.get("pure"):
        opts["reads"], opts["writes"] = reads, writes
    return opts


def unused_entries(annotations: AnnotationsFile, used: set[str], servers: set[str]) -> list[str]:
    """Entries of the file that matched no tool or server (most likely typos)."""
    stale = [f"tools.{k}" for k in annotations.tools if k not in used]
    stale += [f"servers.{k}" for k in annotations.servers if k not in servers]
    return stale
