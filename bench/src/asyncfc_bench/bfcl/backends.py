"""Fresh BFCL backend instances per entry, their OpenAI schemas, and asyncfc tools over them.

We build our own instances instead of using the official executor, which ``eval``s call
strings and caches instances in module globals forever. Each instance gets a deep copy of
its scenario (and, in long context, of its whole attribute dict), so nothing aliases
module-level data (long-context cards and bookings are module dicts a booking would
otherwise mutate), and mutable parameter defaults are copied per call.

Results are formatted exactly as ``execute_multi_turn_func_call`` does (``str`` as is,
``dict`` through ``json.dumps``, anything else ``str``; an exception becomes
``"Error during execution: ..."``), so the official response checker sees the same text.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib
import inspect
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from asyncfc.tools import Tool, tool_from_schema
from asyncfc_bench.bfcl.annotations import ANNOTATIONS, Access, process_wide
from asyncfc_bench.bfcl.data import Entry, FunctionDoc, function_docs

__all__ = [
    "BFCL_TO_JSON_TYPE",
    "ERROR_PREFIX",
    "backend_class",
    "bind",
    "format_result",
    "instances_for",
    "make_instances",
    "make_tools",
    "openai_schema",
    "signature_param_order",
]

BFCL_TO_JSON_TYPE: dict[str, str] = {
    "integer": "integer",
    "number": "number",
    "float": "number",
    "string": "string",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "dict": "object",
    "object": "object",
    "tuple": "array",
    "any": "string",
    "byte": "integer",
    "short": "integer",
    "long": "integer",
    "double": "number",
    "char": "string",
    "ArrayList": "array",
    "Array": "array",
    "HashMap": "object",
}
"""BFCL's type names -> JSON Schema types (``GORILLA_TO_OPENAPI``); unknown ones -> string."""

ERROR_PREFIX = "Error during execution: "

_PROCESS_LOCK = threading.Lock()
"""Held around calls that write process-wide state (mpmath precision, a module dict), so
that a call and the formatting of its result are atomic across concurrent sessions."""


def backend_class(class_name: str) -> type[Any]:
    """The backend class for a BFCL class name, e.g. ``"GorillaFileSystem"``."""
    from bfcl_eval.constants.executable_backend_config import CLASS_FILE_PATH_MAPPING

    module = importlib.import_module(CLASS_FILE_PATH_MAPPING[class_name])
    cls: type[Any] = getattr(module, class_name)
    return cls


def make_instances(
    involved_classes: Iterable[str], initial_config: Mapping[str, Any], *, long_context: bool = False
) -> dict[str, Any]:
    """New backend instances, loaded like the official executor loads them.

    ``_load_scenario(deepcopy(initial_config.get(cls, {})), long_context=...)`` unless the
    class is stateless. In long context the attribute dict is then deep-copied as a whole
    (one memo, so ``_current_dir`` stays inside ``root``): the long-context extensions are
    module-level dicts the backends insert without copying. (Otherwise ``_load_scenario``
    already copies its defaults and we copy the scenario.)
    """
    from bfcl_eval.constants.executable_backend_config import STATELESS_CLASSES

    instances: dict[str, Any] = {}
    for name in involved_classes:
        inst = backend_class(name)()
        if name not in STATELESS_CLASSES:
            inst._load_scenario(copy.deepcopy(dict(initial_config).get(name, {})), long_context=long_context)
            if long_context:
                inst.__dict__.update(copy.deepcopy(inst.__dict__))
        instances[name] = inst
    return instances


def instances_for(entry: Entry) -> dict[str, Any]:
    """Fresh instances for one entry, in its initial state."""
    return make_instances(entry.involved_classes, entry.initial_config, long_context=entry.long_context)


def _json_type(schema: dict[str, Any]) -> None:
    """Map BFCL types in place, recursively (objects' properties and arrays' items)."""
    bfcl_type = schema.get("type")
    schema["type"] = BFCL_TO_JSON_TYPE.get(bfcl_type, "string") if isinstance(bfcl_type, str) else "string"
    if bfcl_type == "float":
        schema["format"] = "float"
        schema["description"] = schema.get("description", "") + " This is a float type value."
    for sub in schema.get("properties", {}).values():
        _json_type(sub)
    if isinstance(schema.get("items"), dict):
        _json_type(schema["items"])


def openai_schema(doc: FunctionDoc) -> dict[str, Any]:
    """A BFCL function doc as an OpenAI function (``{"name", "description", "parameters"}``).

    Types are mapped as the official ``convert_to_tool`` does (``dict`` -> ``object``,
    ``float`` -> ``number`` with ``format: float`` and a note in the description,
    ``tuple`` -> ``array``, ``any`` -> ``string``); the non-standard ``response`` key is
    dropped so that strict servers accept the schema.
    """
    params = copy.deepcopy(doc.get("parameters") or {})
    params["type"] = "object"
    properties = params.setdefault("properties", {})
    for sub in properties.values():
        _json_type(sub)
    params.setdefault("required", [])
    return {"name": doc["name"], "description": doc.get("description", ""), "parameters": params}


def format_result(value: Any) -> str:
    """A backend return value as the official executor renders it for the model."""
    if type(value) is str:
        return value
    if type(value) is dict:
        try:
            return json.dumps(value)
        except Exception:  # the official executor falls back on str() for anything
            return str(value)
    return str(value)


@functools.cache
def _class_param_order(class_name: str) -> dict[str, tuple[str, ...]]:
    return {
        name: tuple(inspect.signature(method).parameters)[1:]  # drop self
        for name, method in inspect.getmembers(backend_class(class_name), predicate=inspect.isfunction)
        if not name.startswith("_")
    }


def signature_param_order(instances: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Public method name -> parameter names, from the signatures of these classes.

    This is the order the official ``eval`` binds positional arguments with; use it with
    :func:`asyncfc_bench.bfcl.calls.parse_call`.
    """
    order: dict[str, tuple[str, ...]] = {}
    for class_name in instances:
        order.update(_class_param_order(class_name))
    return order


@functools.cache
def _mutable_defaults(function: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(
        (p.name, p.default)
        for p in inspect.signature(function).parameters.values()
        if isinstance(p.default, (list, dict, set))
    )


def bind(instance: Any, name: str) -> Callable[..., str]:
    """A keyword-only callable running ``instance.name`` and returning the formatted result.

    Omitted parameters whose default is a list, dict or set get a fresh copy: the backends'
    shared defaults (``TwitterAPI.post_tweet(tags=[], mentions=[])``, later extended in place
    by ``mention``) would otherwise leak state across instances and runs.
    """
    method = getattr(instance, name)
    defaults = _mutable_defaults(getattr(method, "__func__", method))
    locked = process_wide(name)

    def call(**kwargs: Any) -> str:
        for pname, default in defaults:
            if pname not in kwargs:
                kwargs[pname] = copy.deepcopy(default)
        try:
            if locked:
                with _PROCESS_LOCK:
                    return format_result(method(**kwargs))
            return format_result(method(**kwargs))
        except Exception as exc:  # backend errors are values the model reads
            return f"{ERROR_PREFIX}{exc}"

    call.__name__ = name
    call.__doc__ = method.__doc__
    return call


def _unbound(**kwargs: Any) -> str:
    raise RuntimeError("template tool: not bound to a backend instance")


@functools.cache
def _template(class_name: str, name: str, access: Access | None) -> Tool:
    """The tool for one function without its instance; building it (schema check) is slow."""
    doc = next(d for d in function_docs(class_name) if d["name"] == name)
    if access is None:
        return tool_from_schema(openai_schema(doc), _unbound)
    return tool_from_schema(
        openai_schema(doc), _unbound, reads=access.reads, writes=access.writes, pure=access.pure
    )


@functools.cache
def _function_names(class_name: str) -> tuple[str, ...]:
    return tuple(d["name"] for d in function_docs(class_name))


def make_tools(
    instances: Mapping[str, Any],
    annotations: Mapping[str, Access] | None = ANNOTATIONS,
    *,
    names: Iterable[str] | None = None,
) -> list[Tool]:
    """One :class:`Tool` per documented function of the given instances.

    ``annotations`` maps function names to read/write labels (default: the full table);
    a function missing from it, or ``annotations=None``, gets none and so reads and
    writes the root, which is always correct. ``names`` restricts the tools (e.g. to hide
    miss_func functions before their turn). The schema dicts are built once per function
    and shared between entries: treat them as read-only.
    """
    tools: list[Tool] = []
    wanted = set(names) if names is not None else None
    for class_name, inst in instances.items():
        for name in _function_names(class_name):
            if wanted is not None and name not in wanted:
                continue
            template = _template(class_name, name, (annotations or {}).get(name))
            tools.append(dataclasses.replace(template, fn=bind(inst, name)))
    return tools
