"""Tools: plain Python callables plus the schema and annotations the runtime needs.

A tool's *read/write sets* are labels on a state tree (``"fs/cwd"``, ``"files/{path}"``).
They let the scheduler run calls concurrently while keeping the result of the
synchronous program. A tool with no annotations reads and writes the root, so it runs
alone and in program order: correct by default, parallel by opt-in.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast, get_type_hints, overload

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic_core import to_jsonable_python

from .errors import ConfigurationError, ToolDefinitionError, check_number

__all__ = [
    "ArgumentsError",
    "Tool",
    "tool",
    "tool_from_schema",
]

ROOT = ""
"""The label of the whole state tree; it conflicts with every other label."""


def labels_conflict(a: str, b: str) -> bool:
    """Two labels conflict when one is a path prefix of the other (``fs`` vs ``fs/cwd``)."""
    if ROOT in (a, b) or a == b:
        return True
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return long.startswith(short) and long[len(short)] == "/"


_Template = tuple[tuple[str, str | None], ...]
"""A parsed label template: (literal text, argument name or None) pairs."""


class ArgumentsError(ValueError):
    """Arguments did not match the tool's schema (the message is shown to the model)."""


@dataclass(frozen=True, eq=False)
class Tool:
    """A callable the model may call, with its JSON schema and scheduling annotations."""

    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any]
    reads: tuple[str, ...] = (ROOT,)
    writes: tuple[str, ...] = (ROOT,)
    output_example: Any = None
    timeout: float | None = None
    idempotent: bool = False
    """Safe to run again after a lost worker (executors retry only such tools)."""
    latency_s: float | None = None
    """How long one call usually takes, in seconds (a hint): until the runtime has measured
    the tool, the cost-aware grace policy (:mod:`asyncfc.grace`) decides from it."""
    resources: Mapping[str, float] | None = None
    """What one call needs from a cluster executor, e.g. ``{"num_cpus": 1}``."""
    args_model: type[BaseModel] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        try:
            check_number("timeout", self.timeout, 0, above=True, none=True)
            check_number("latency_s", self.latency_s, 0, none=True)
        except ConfigurationError as exc:  # a tool's own annotation: a definition error
            raise ToolDefinitionError(f"tool {self.name!r}: {exc}") from None

    @functools.cached_property
    def is_async(self) -> bool:
        """Computed once per tool: the executor asks on every call."""
        return inspect.iscoroutinefunction(self.fn)

    @property
    def pure(self) -> bool:
        return not self.reads and not self.writes

    def spec(self) -> dict[str, Any]:
        """The tool in OpenAI function format (``{"name", "description", "parameters"}``)."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    def validate(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Check concrete arguments against the schema; return the keyword arguments to call with."""
        if self.args_model is not None:
            try:
                parsed = self.args_model.model_validate(
                    arguments if type(arguments) is dict else dict(arguments)
                )
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or '(arguments)'}: {e['msg']}" for e in exc.errors()
                )
                raise ArgumentsError(problems) from None
            # what iterating the model gives (fields, then extras), without a generator per call
            extra = parsed.__pydantic_extra__
            return {**parsed.__dict__, **extra} if extra else dict(parsed.__dict__)
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(dict(arguments)))
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path)
            raise ArgumentsError(f"{where + ': ' if where else ''}{error.message}")
        accepted = self._accepted_names
        if accepted is not None:
            unexpected = sorted(set(arguments) - accepted)
            if unexpected:
                raise ArgumentsError(f"unexpected argument(s) {', '.join(map(repr, unexpected))}")
        return dict(arguments)

    @functools.cached_property
    def _accepted_names(self) -> frozenset[str] | None:
        """The keyword names the function takes (None: it takes any, via ``**kwargs``)."""
        try:
            params = inspect.signature(self.fn).parameters.values()
        except (TypeError, ValueError):
            return None
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            return None
        return frozenset(p.name for p in params)

    @functools.cached_property
    def text_params(self) -> frozenset[str]:
        """Top-level parameters that only accept strings (references there are filled in as text)."""
        props = self.parameters.get("properties", {})
        return frozenset(n for n, p in props.items() if isinstance(p, Mapping) and p.get("type") == "string")

    @functools.cached_property
    def _validator(self) -> jsonschema.protocols.Validator:
        """Built once per tool: checking the schema itself on every call would cost ~1 ms."""
        cls = jsonschema.validators.validator_for(self.parameters, default=jsonschema.Draft202012Validator)
        return cls(self.parameters)

    def labels(
        self, arguments: Mapping[str, Any], unresolved: Callable[[Any], bool], *, validated: bool = False
    ) -> tuple[set[str], set[str]]:
        """Concrete read and write labels for one call.

        A label is rendered from exactly the value the tool will receive: ``arguments`` are
        the validated ones, or (``validated=False``) each templated argument is coerced as
        validation would coerce it (``"01"``, ``1.0`` and ``True`` all give ``1`` for an
        ``int``). A field that is still an unresolved future, or cannot be coerced, is cut
        off, so the label widens to its prefix: coarser, never wrong.
        """
        reads, writes = self._templates
        return (
            {self._render(t, arguments, unresolved, validated) for t in reads},
            {self._render(t, arguments, unresolved, validated) for t in writes},
        )

    @functools.cached_property
    def _templates(self) -> tuple[tuple[_Template, ...], tuple[_Template, ...]]:
        """The read and write templates, parsed once per tool instead of on every call."""
        return tuple(map(_parse_template, self.reads)), tuple(map(_parse_template, self.writes))

    def _render(
        self,
        template: _Template,
        arguments: Mapping[str, Any],
        unresolved: Callable[[Any], bool],
        validated: bool,
    ) -> str:
        out: list[str] = []
        for literal, name in template:
            out.append(literal)
            if name is None:
                continue
            value = arguments.get(name)
            if value is not None and not validated:
                value = None if unresolved(value) else self._coerce(name, value)
            if value is None:
                return "".join(out).rstrip("/")
            out.append(label_text(value))
        return "".join(out)

    def _coerce(self, name: str, value: Any) -> Any:
        """``value`` as validation would pass it to the tool, or None when that cannot be told."""
        if self.args_model is None:
            return value  # JSON Schema validation does not convert values
        adapter = self._field_adapters.get(name)
        if adapter is None:
            return None
        try:
            return adapter.validate_python(value)
        except ValidationError:
            return None

    @functools.cached_property
    def _field_adapters(self) -> dict[str, TypeAdapter[Any]]:
        assert self.args_model is not None
        return {n: TypeAdapter(f.annotation or Any) for n, f in self.args_model.model_fields.items()}


def _parse_template(template: str) -> _Template:
    return tuple((literal, name) for literal, name, _spec, _conv in string.Formatter().parse(template))


def label_text(value: Any) -> str:
    """One canonical text per value, so equal values always give equal labels.

    Numbers that compare equal (``True``, ``1``, ``1.0``) share a text; that may make two
    labels conflict that did not need to, never the other way round.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int)):
        return str(int(value))
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    text = json.dumps(to_jsonable_python(value, fallback=repr), sort_keys=True, default=str)
    return text.replace("/", "\\/")


def _annotations(
    reads: Sequence[str] | None, writes: Sequence[str] | None, pure: bool, name: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if pure:
        if reads or writes:
            raise ToolDefinitionError(f"tool {name!r}: pure=True contradicts reads/writes")
        return (), ()
    if reads is None and writes is None:
        return (ROOT,), (ROOT,)
    return tuple(reads or ()), tuple(writes or ())


_ARG_DOC = re.compile(r"^\s{2,}(\w+)(?:\s*\([^)]*\))?:\s*(.+)$")


def _split_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Summary text and Google-style ``Args:`` descriptions of a docstring."""
    lines = doc.splitlines()
    params: dict[str, str] = {}
    summary: list[str] = []
    in_args = False
    for line in lines:
        if line.strip() in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
            continue
        if in_args:
            m = _ARG_DOC.match(line)
            if m:
                params[m.group(1)] = m.group(2).strip()
                continue
            if line.strip() and not line.startswith(" "):
                in_args = False
        if not in_args:
            summary.append(line)
    return "\n".join(summary).strip(), params


def _strip_titles(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _strip_titles(v) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema


def _example_from_model(model: type[BaseModel]) -> dict[str, Any]:
    example: dict[str, Any] = {}
    for fname, finfo in model.model_fields.items():
        ann = finfo.annotation
        example[fname] = (
            _example_from_model(ann) if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        )
    return example


def _from_function(
    fn: Callable[..., Any],
    *,
    name: str | None,
    description: str | None,
    reads: Sequence[str] | None,
    writes: Sequence[str] | None,
    pure: bool,
    output_example: Any,
    timeout: float | None,
    idempotent: bool,
    resources: Mapping[str, float] | None,
    latency_s: float | None = None,
) -> Tool:
    tool_name = name or fn.__name__
    summary, param_docs = _split_docstring(inspect.getdoc(fn) or "")
    try:
        hints = get_type_hints(fn)
    except Exception as exc:  # unresolvable forward references and the like
        raise ToolDefinitionError(f"tool {tool_name!r}: cannot read type hints: {exc}") from exc
    fields: dict[str, Any] = {}
    for pname, param in inspect.signature(fn).parameters.items():
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"tool {tool_name!r}: *args and **kwargs cannot be described to a model"
            )
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise ToolDefinitionError(f"tool {tool_name!r}: positional-only parameter {pname!r}")
        default = ... if param.default is inspect.Parameter.empty else param.default
        if pname not in hints:
            raise ToolDefinitionError(
                f"tool {tool_name!r}: parameter {pname!r} has no type annotation, so the model would get "
                "no schema for it; annotate it (typing.Any accepts anything)"
            )

        fields[pname] = (hints.get(pname, Any), Field(default, description=param_docs.get(pname)))
    args_model = cast(
        "type[BaseModel]",
        create_model(f"{tool_name}_args", __config__=ConfigDict(extra="forbid"), **fields),
    )
    parameters = _strip_titles(args_model.model_json_schema())
    parameters.setdefault("properties", {})
    returns = hints.get("return")
    if output_example is None and isinstance(returns, type) and issubclass(returns, BaseModel):
        output_example = _example_from_model(returns)
    r, w = _annotations(reads, writes, pure, tool_name)
    return Tool(
        name=tool_name,
        description=description or summary or tool_name,
        parameters=parameters,
        fn=fn,
        reads=r,
        writes=w,
        output_example=output_example,
        timeout=timeout,
        idempotent=idempotent,
        resources=resources,
        latency_s=latency_s,
        args_model=args_model,
    )


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    reads: Sequence[str] | None = None,
    writes: Sequence[str] | None = None,
    pure: bool = False,
    output_example: Any = None,
    timeout: float | None = None,
    idempotent: bool = False,
    resources: Mapping[str, float] | None = None,
    latency_s: float | None = None,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    reads: Sequence[str] | None = None,
    writes: Sequence[str] | None = None,
    pure: bool = False,
    output_example: Any = None,
    timeout: float | None = None,
    idempotent: bool = False,
    resources: Mapping[str, float] | None = None,
    latency_s: float | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a sync or async function into a :class:`Tool`.

    The schema comes from the type hints (via pydantic), the description from the
    docstring (Google-style ``Args:`` become parameter descriptions). ``reads`` and
    ``writes`` are state labels, optionally templated from arguments (``"files/{path}"``);
    ``pure=True`` declares that the tool touches no state. ``output_example`` (or a
    pydantic return type) lets the model address fields of a result it has not seen.
    ``idempotent=True`` allows an executor to run the call again after a lost worker;
    ``resources`` is what one call needs on a cluster executor (``{"num_cpus": 1}``).
    ``latency_s`` is how long a call usually takes (a hint for the grace policy, which
    measures the tool once it has run).
    """

    def wrap(f: Callable[..., Any]) -> Tool:
        return _from_function(
            f,
            name=name,
            description=description,
            reads=reads,
            writes=writes,
            pure=pure,
            output_example=output_example,
            timeout=timeout,
            idempotent=idempotent,
            resources=resources,
            latency_s=latency_s,
        )

    return wrap(fn) if fn is not None else wrap


def tool_from_schema(
    schema: Mapping[str, Any],
    fn: Callable[..., Any],
    *,
    reads: Sequence[str] | None = None,
    writes: Sequence[str] | None = None,
    pure: bool = False,
    output_example: Any = None,
    timeout: float | None = None,
    idempotent: bool = False,
    resources: Mapping[str, float] | None = None,
    latency_s: float | None = None,
) -> Tool:
    """Build a tool from an OpenAI-style schema and the callable that executes it.

    Accepts ``{"type": "function", "function": {...}}`` or the inner
    ``{"name", "description", "parameters"}``. Arguments are validated with JSON Schema.
    """
    spec = schema.get("function", schema)
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ToolDefinitionError("tool schema needs a 'name' (OpenAI function format)")
    name = str(spec["name"])
    parameters = dict(spec.get("parameters") or {"type": "object", "properties": {}})
    try:
        jsonschema.Draft202012Validator.check_schema(parameters)
    except jsonschema.SchemaError as exc:
        raise ToolDefinitionError(f"tool {name!r}: invalid parameters schema: {exc.message}") from exc
    r, w = _annotations(reads, writes, pure, name)
    return Tool(
        name=name,
        description=str(spec.get("description") or name),
        parameters=parameters,
        fn=fn,
        reads=r,
        writes=w,
        output_example=output_example,
        timeout=timeout,
        idempotent=idempotent,
        resources=resources,
        latency_s=latency_s,
    )


def checked_tools(tools: Any) -> list[Tool]:
    """``tools`` as a list, or a :class:`ToolDefinitionError` that says how to make a tool of
    whatever is not one (a plain function has no schema yet: it needs ``@tool``)."""
    if isinstance(tools, (Tool, str, bytes)) or callable(tools) or not isinstance(tools, Iterable):
        what, fix = _not_a_tool(tools)
        if not isinstance(tools, Tool):
            fix += ", in a list: tools=[...]"
        raise ToolDefinitionError(f"tools must be a list of tools, got {what}: {fix}")
    items = list(tools)
    for i, item in enumerate(items):
        if not isinstance(item, Tool):
            what, fix = _not_a_tool(item)
            raise ToolDefinitionError(f"tools[{i}] is {what}, not a tool: {fix}")
    return items


def _not_a_tool(item: Any) -> tuple[str, str]:
    """What ``item`` is, and how to make a tool of it."""
    if isinstance(item, Tool):
        return f"the tool {item.name!r} alone", f"pass a list, tools=[{item.name}]"
    if inspect.isfunction(item) or inspect.ismethod(item) or inspect.isbuiltin(item):
        name = getattr(item, "__name__", "")
        shown = getattr(item, "__qualname__", name)
        return (
            f"the plain function {shown!r}",
            f"decorate it with @tool (from asyncfc import tool) or wrap it, tool({name if name.isidentifier() else 'fn'})",
        )
    text = repr(item)
    text = text if len(text) <= 80 else text[:77] + "..."
    what = f"{text} (of type {type(item).__name__})"
    if callable(item):
        return what, "make a tool of it with tool(fn) or tool_from_schema(schema, fn) (from asyncfc)"
    return what, "tools are made with @tool, tool(fn) or tool_from_schema(schema, fn) (from asyncfc)"
