"""BFCL call strings (``cd(folder='temp')``) to keyword arguments and back, without ``eval``.

Ground truth and prompting-style models write calls as Python source. The official executor
``eval``s them; we parse with :mod:`ast` and accept only literal arguments
(:func:`ast.literal_eval`), so model output is never executed. Positional arguments are
named with a parameter order: take it from the backend method signatures
(:func:`asyncfc_bench.bfcl.backends.signature_param_order`), which is what the official
``eval`` binds to; the docs' order differs once (``TravelAPI.purchase_insurance``).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "CallSyntaxError",
    "parse_call",
    "parse_calls",
    "to_call_string",
]


class CallSyntaxError(ValueError):
    """A call string is not ``name(literal, ..., key=literal, ...)``."""


def _literal(node: ast.expr, source: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise CallSyntaxError(f"non-literal argument in {source!r}") from exc


def _from_node(
    node: ast.expr, source: str, param_order: Mapping[str, Sequence[str]] | None
) -> tuple[str, dict[str, Any]]:
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise CallSyntaxError(f"not a plain function call: {source!r}")
    name = node.func.id
    kwargs: dict[str, Any] = {}
    if node.args:
        order = (param_order or {}).get(name)
        if order is None:
            raise CallSyntaxError(f"positional arguments to {name!r}, whose parameters are unknown")
        if len(node.args) > len(order):
            raise CallSyntaxError(f"{name!r} takes at most {len(order)} positional arguments")
        for pname, arg in zip(order, node.args, strict=False):
            if isinstance(arg, ast.Starred):
                raise CallSyntaxError(f"starred argument in {source!r}")
            kwargs[pname] = _literal(arg, source)
    for kw in node.keywords:
        if kw.arg is None:
            raise CallSyntaxError(f"**kwargs in {source!r}")
        if kw.arg in kwargs:
            raise CallSyntaxError(f"{name!r} got multiple values for {kw.arg!r}")
        kwargs[kw.arg] = _literal(kw.value, source)
    return name, kwargs


def _parse(source: str) -> ast.expr:
    try:
        return ast.parse(source.strip(), mode="eval").body
    except SyntaxError as exc:
        raise CallSyntaxError(f"invalid call syntax: {source!r}") from exc


def parse_call(
    source: str, param_order: Mapping[str, Sequence[str]] | None = None
) -> tuple[str, dict[str, Any]]:
    """``"sort('a.txt')"`` -> ``("sort", {"file_name": "a.txt"})``.

    ``param_order`` maps function names to parameter names and is needed only for
    positional arguments. Raises :class:`CallSyntaxError` for anything but a call of a
    bare name with literal arguments.
    """
    return _from_node(_parse(source), source, param_order)


def parse_calls(
    source: str, param_order: Mapping[str, Sequence[str]] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """A prompting-style reply ``"[f(a=1), g()]"`` (or a single call) -> parsed calls."""
    node = _parse(source)
    items = node.elts if isinstance(node, (ast.List, ast.Tuple)) else [node]
    return [_from_node(item, source, param_order) for item in items]


def to_call_string(name: str, kwargs: Mapping[str, Any]) -> str:
    """The BFCL string for a call, as ``convert_to_function_call`` writes it (``k=repr(v)``)."""
    return f"{name}({','.join(f'{k}={v!r}' for k, v in kwargs.items())})"
