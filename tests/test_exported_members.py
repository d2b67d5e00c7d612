"""The public API, pinned: what each public package exports (its ``__all__``) is this list.

A name added to or dropped from a package's ``__all__`` must be added or dropped here too,
on purpose; every listed name must import.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest

import asyncfc

EXPORTS: dict[str, list[str]] = {
    "asyncfc": [
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
    ],
    "asyncfc.models": [
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
    ],
    "asyncfc.executors": [
        "EXECUTOR_KINDS",
        "Executor",
        "ExecutorKind",
        "ExecutorUnavailable",
        "MAX_RESULT_ITEMS",
        "ProcessExecutor",
        "RayExecutor",
        "ThreadExecutor",
        "ToolFailed",
        "ToolTimeout",
        "WorkerLost",
        "make_executor",
    ],
    "asyncfc.grace": [
        "CostAware",
        "DEFAULT_CAP_S",
        "DEFAULT_GRACE_S",
        "DEFAULT_STEP_S",
        "Decision",
        "FixedWindow",
        "Grace",
        "GraceHost",
        "GraceOption",
        "ModelCost",
        "grace_policy",
    ],
    "asyncfc.testing": [
        "Ref",
        "ScriptedCall",
        "ScriptedModel",
        "SimServer",
        "Turn",
        "TurnSpec",
    ],
    "asyncfc.local": [
        "DEFAULT_SIZE",
        "EMBEDDED_PROFILE",
        "GGUFError",
        "LocalModel",
        "LocalModelError",
        "LocalServer",
        "ModelSpec",
        "Progress",
        "SIZES",
        "ServerError",
        "TemplatePatchError",
        "WeightsError",
        "build_llama_server",
        "cache_dir",
        "ensure_server",
        "model",
        "profile_for",
        "pull",
        "release",
        "running",
        "serve",
        "silent",
        "stop",
    ],
    "asyncfc.integrations.mcp": [
        "AnnotationsFile",
        "Proxy",
        "ProxyConfig",
        "TASKS_EXTENSION",
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
    ],
}
"""Each public package's exports, sorted."""


def test_the_pinned_lists_are_sorted_and_without_duplicates() -> None:
    for names in EXPORTS.values():
        assert names == sorted(set(names))


@pytest.mark.parametrize("package", list(EXPORTS))
def test_exports_are_the_pinned_list(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == EXPORTS[package]
    assert len(module.__all__) == len(set(module.__all__))


@pytest.mark.parametrize("package", list(EXPORTS))
def test_every_export_imports(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
    namespace: dict[str, Any] = {}
    exec(f"from {package} import *", namespace)  # what a star import gives is __all__, all of it
    assert set(EXPORTS[package]) <= set(namespace)


def test_asyncfc_has_no_public_name_outside_all() -> None:
    """Every public, non-module attribute of ``asyncfc`` is exported: nothing leaks unlisted."""
    public = {
        name
        for name, value in vars(asyncfc).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(asyncfc.__all__)


def test_exceptions_are_reachable_from_asyncfc() -> None:
    for name in [
        "AsyncFCError",
        "ConfigurationError",
        "LocalModelError",
        "ModelError",
        "SessionBusyError",
        "SessionClosedError",
        "ToolDefinitionError",
        "UsageError",
    ]:
        assert issubclass(getattr(asyncfc, name), asyncfc.AsyncFCError)
