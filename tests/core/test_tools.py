"""Tools: schemas from signatures, docstrings, annotations, templated labels, OpenAI schemas."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from asyncfc import AsyncFCError, Tool, ToolDefinitionError, tool, tool_from_schema
from asyncfc.futures import is_reference
from asyncfc.model_text import placeholder
from asyncfc.tools import ROOT, ArgumentsError, labels_conflict


def _walk_keys(obj: Any) -> set[str]:
    if isinstance(obj, dict):
        return set(obj) | {k for v in obj.values() for k in _walk_keys(v)}
    if isinstance(obj, list):
        return {k for v in obj for k in _walk_keys(v)}
    return set()


@tool
def search(query: str, limit: int = 5, tags: list[str] | None = None, exact: bool = False) -> list[str]:
    """Search the catalogue for matching items.

    Results are sorted by relevance.

    Args:
        query: the text to look for.
        limit (int): at most this many results.
    """
    return [query] * limit


def test_schema_from_type_hints_required_optional_defaults() -> None:
    params = search.parameters
    assert params["type"] == "object"
    props = params["properties"]
    assert set(props) == {"query", "limit", "tags", "exact"}
    assert params["required"] == ["query"]
    assert props["query"]["type"] == "string"
    assert props["limit"]["type"] == "integer"
    assert props["limit"]["default"] == 5
    assert props["exact"] == {"type": "boolean", "default": False}
    assert props["tags"]["default"] is None
    assert {"type": "array", "items": {"type": "string"}} in props["tags"]["anyOf"]
    assert "title" not in _walk_keys(params)  # noise for the model
    json.dumps(params)  # the schema is JSON


def test_description_and_arg_docs_from_docstring() -> None:
    assert search.name == "search"
    assert search.description.startswith("Search the catalogue for matching items.")
    assert "sorted by relevance" in search.description
    assert "Args:" not in search.description and "the text to look for" not in search.description
    props = search.parameters["properties"]
    assert props["query"]["description"] == "the text to look for."
    assert props["limit"]["description"] == "at most this many results."
    assert "description" not in props["exact"]
    assert search.spec() == {
        "name": "search",
        "description": search.description,
        "parameters": search.parameters,
    }


def test_name_and_description_overrides_and_no_docstring() -> None:
    @tool(name="lookup", description="Find a thing.")
    def f(x: int) -> int:
        """Ignored."""
        return x

    def bare(x: int) -> int:
        return x

    assert (f.name, f.description) == ("lookup", "Find a thing.")
    assert tool(bare).description == "bare"


def test_validation_applies_defaults_and_rejects_bad_arguments_readably() -> None:
    assert search.validate({"query": "q"}) == {"query": "q", "limit": 5, "tags": None, "exact": False}
    with pytest.raises(ArgumentsError) as wrong_type:
        search.validate({"query": "q", "limit": "many"})
    assert "limit" in str(wrong_type.value) and "integer" in str(wrong_type.value)
    with pytest.raises(ArgumentsError) as missing:
        search.validate({})
    assert "query" in str(missing.value) and "required" in str(missing.value).lower()
    with pytest.raises(ArgumentsError) as extra:
        search.validate({"query": "q", "colour": "red"})
    assert "colour" in str(extra.value)


class Point(BaseModel):
    x: int
    y: int


def test_pydantic_model_parameter() -> None:
    @tool(pure=True)
    def norm(p: Point, scale: float = 1.0) -> float:
        """Length of a point."""
        return float(abs(p.x) + abs(p.y)) * scale

    params = norm.parameters
    assert params["required"] == ["p"]
    schema_text = json.dumps(params)
    assert '"x"' in schema_text and '"y"' in schema_text and "integer" in schema_text
    kwargs = norm.validate({"p": {"x": 3, "y": -4}})
    assert isinstance(kwargs["p"], Point)
    assert norm.fn(**kwargs) == 7.0
    with pytest.raises(ArgumentsError) as exc:
        norm.validate({"p": {"x": 3}})
    assert "p.y" in str(exc.value)


def test_sync_and_async_detection() -> None:
    @tool
    async def a() -> int:
        return 1

    assert a.is_async and not search.is_async


def test_pure_and_read_write_defaults() -> None:
    @tool
    def unannotated() -> None: ...

    @tool(pure=True)
    def pure() -> None: ...

    @tool(reads=["db/users"])
    def reader() -> None: ...

    @tool(writes=["db/users"])
    def writer() -> None: ...

    @tool(reads=["a"], writes=["b"])
    def both() -> None: ...

    assert (unannotated.reads, unannotated.writes) == ((ROOT,), (ROOT,))
    assert not unannotated.pure
    assert (pure.reads, pure.writes) == ((), ()) and pure.pure
    assert (reader.reads, reader.writes) == (("db/users",), ())
    assert (writer.reads, writer.writes) == ((), ("db/users",))
    assert (both.reads, both.writes) == (("a",), ("b",))
    assert not reader.pure


def test_pure_contradicting_annotations_is_a_definition_error() -> None:
    with pytest.raises(ToolDefinitionError, match="pure"):

        @tool(pure=True, writes=["x"])
        def f() -> None: ...


def test_templated_labels_rendered_from_arguments() -> None:
    @tool(reads=["dirs/{folder}"], writes=["files/{folder}/{name}"])
    def save(folder: str, name: str, n: int = 0) -> None: ...

    reads, writes = save.labels({"folder": "docs", "name": "a.txt"}, is_reference)
    assert reads == {"dirs/docs"} and writes == {"files/docs/a.txt"}

    @tool(writes=["acct/{n}"])
    def bump(n: int) -> None: ...

    assert bump.labels({"n": 7}, is_reference) == (set(), {"acct/7"})


def test_templated_label_widens_to_prefix_for_unresolved_reference() -> None:
    @tool(reads=[], writes=["files/{folder}/{name}"])
    def save(folder: str, name: str) -> None: ...

    assert save.labels({"folder": "docs", "name": "fut_3"}, is_reference)[1] == {"files/docs"}
    assert save.labels({"folder": "fut_1.dir", "name": "x"}, is_reference)[1] == {"files"}
    # a missing argument cannot be rendered either: coarser, never wrong
    assert save.labels({"name": "x"}, is_reference)[1] == {"files"}


def test_tool_from_schema_openai_wrapped_and_inner() -> None:
    inner = {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    }

    def run(city: str, days: int = 1) -> str:
        return f"{city}:{days}"

    for schema in (inner, {"type": "function", "function": inner}):
        t = tool_from_schema(schema, run, reads=["weather/{city}"])
        assert isinstance(t, Tool)
        assert t.spec() == inner
        assert (t.reads, t.writes) == (("weather/{city}",), ())
        assert t.validate({"city": "Oslo"}) == {"city": "Oslo"}
        with pytest.raises(ArgumentsError) as exc:
            t.validate({"city": "Oslo", "days": "two"})
        assert "days" in str(exc.value) and "integer" in str(exc.value)
        with pytest.raises(ArgumentsError, match="city"):
            t.validate({})
    no_params = tool_from_schema({"name": "ping"}, lambda: "pong")
    assert no_params.parameters == {"type": "object", "properties": {}}
    assert no_params.description == "ping"
    assert (no_params.reads, no_params.writes) == ((ROOT,), (ROOT,))


def test_tool_from_invalid_schema_is_a_definition_error() -> None:
    bad = {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "nonsense"}}}}
    with pytest.raises(ToolDefinitionError, match="invalid parameters schema"):
        tool_from_schema(bad, lambda a: a)
    with pytest.raises(ToolDefinitionError, match="name"):
        tool_from_schema({"description": "no name"}, lambda: None)
    with pytest.raises(ToolDefinitionError, match="name"):
        tool_from_schema({"type": "function", "function": "oops"}, lambda: None)


def test_var_args_and_positional_only_are_definition_errors() -> None:
    def star(*args: int) -> None: ...

    def kw(**kwargs: int) -> None: ...

    def posonly(a: int, /) -> None: ...

    for fn in (star, kw, posonly):
        with pytest.raises(ToolDefinitionError) as exc:
            tool(fn)
        assert fn.__name__ in str(exc.value)
        assert isinstance(exc.value, AsyncFCError)


def test_unresolvable_type_hint_is_a_definition_error() -> None:
    def f(x: NoSuchType) -> None: ...  # type: ignore[name-defined] # noqa: F821

    with pytest.raises(ToolDefinitionError, match="type hints"):
        tool(f)


def test_output_example_gives_structured_placeholder() -> None:
    @tool(pure=True, output_example={"price": 1.0, "meta": {"currency": "EUR"}})
    def quote(item: str) -> dict[str, Any]:
        return {"price": 2.0, "meta": {"currency": "EUR"}}

    ph = placeholder("fut_4", quote.output_example)
    assert ph["future"] == "fut_4" and ph["status"] == "pending"
    assert ph["fields"] == {"price": "fut_4.price", "meta": {"currency": "fut_4.meta.currency"}}
    assert "fields" not in placeholder("fut_5", None)
    assert "fields" not in placeholder("fut_5", [1, 2])


class Money(BaseModel):
    amount: float
    currency: str


class Quote(BaseModel):
    item: str
    price: Money


def test_pydantic_return_model_gives_structured_placeholder() -> None:
    @tool(pure=True)
    def quote(item: str) -> Quote:
        return Quote(item=item, price=Money(amount=1.0, currency="EUR"))

    assert quote.output_example == {"item": None, "price": {"amount": None, "currency": None}}
    assert placeholder("fut_1", quote.output_example)["fields"] == {
        "item": "fut_1.item",
        "price": {"amount": "fut_1.price.amount", "currency": "fut_1.price.currency"},
    }


def test_labels_conflict() -> None:
    assert labels_conflict("fs", "fs/cwd") and labels_conflict("fs/cwd", "fs")
    assert labels_conflict(ROOT, "x/y") and labels_conflict("x", ROOT) and labels_conflict("a", "a")
    assert not labels_conflict("fs/cwd", "fs/tree")
    assert not labels_conflict("fs/a", "fs/ab") and not labels_conflict("fs/ab", "fs/a")
