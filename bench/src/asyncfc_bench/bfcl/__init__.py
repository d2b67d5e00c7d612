"""BFCL multi-turn as a benchmark: data, call strings, backends as tools, annotations.

Needs ``bfcl-eval`` installed without its dependencies (``pip install --no-deps
bfcl-eval==2026.3.23 mpmath==1.3.0``); importing this package works without it.
"""

from asyncfc_bench.bfcl.annotations import ANNOTATIONS, CLASS_ANNOTATIONS, LABEL_ATTRIBUTES, PURE, Access
from asyncfc_bench.bfcl.backends import (
    backend_class,
    bind,
    format_result,
    instances_for,
    make_instances,
    make_tools,
    openai_schema,
    signature_param_order,
)
from asyncfc_bench.bfcl.calls import CallSyntaxError, parse_call, parse_calls, to_call_string
from asyncfc_bench.bfcl.data import (
    ADDITIONAL_FUNCTION_PROMPT,
    CATEGORIES,
    CLASSES,
    Entry,
    entry_function_docs,
    function_docs,
    get_entry,
    load_all,
    load_category,
)

__all__ = [
    "ADDITIONAL_FUNCTION_PROMPT",
    "ANNOTATIONS",
    "CATEGORIES",
    "CLASSES",
    "CLASS_ANNOTATIONS",
    "LABEL_ATTRIBUTES",
    "PURE",
    "Access",
    "CallSyntaxError",
    "Entry",
    "backend_class",
    "bind",
    "entry_function_docs",
    "format_result",
    "function_docs",
    "get_entry",
    "instances_for",
    "load_all",
    "load_category",
    "make_instances",
    "make_tools",
    "openai_schema",
    "parse_call",
    "parse_calls",
    "signature_param_order",
    "to_call_string",
]
