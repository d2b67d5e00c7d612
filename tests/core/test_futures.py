"""Futures: IDs, resolution, reference parsing and substitution, widened schemas."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncfc.errors import CallError, ErrorKind
from asyncfc.futures import (
    Future,
    ReferenceError_,
    dumps,
    find_references,
    future_id,
    is_reference,
    references_in,
    substitute,
    widen_schema,
)


def futures(*values: Any) -> dict[int, Future]:
    out: dict[int, Future] = {}
    for i, v in enumerate(values, start=1):
        f = Future(i)
        if isinstance(v, CallError):
            f.set_error(v)
        else:
            f.set_value(v)
        out[i] = f
    return out


def sub(arguments: Any, *values: Any) -> Any:
    table = futures(*values)
    return substitute(arguments, table.get)


def test_ids_are_numbered_with_one_prefix() -> None:
    assert future_id(3) == "fut_3"
    f = Future(12)
    assert (f.id, f.seq, f.done, f.failed) == ("fut_12", 12, False, False)


def test_future_resolves_exactly_once() -> None:
    f = Future(1)
    f.set_value(5)
    assert f.done and not f.failed and f.value == 5
    with pytest.raises(RuntimeError, match="twice"):
        f.set_value(6)
    with pytest.raises(RuntimeError, match="twice"):
        f.set_error(CallError(ErrorKind.TOOL_ERROR, "x"))
    assert f.value == 5
    g = Future(2)
    g.set_error(CallError(ErrorKind.TIMEOUT, "slow"))
    assert g.failed and g.error == CallError(ErrorKind.TIMEOUT, "slow")


@pytest.mark.parametrize("value", [42, 2.5, True, None, "text", {"a": [1, {"b": None}]}, [1, "x"]])
def test_whole_reference_keeps_json_type(value: Any) -> None:
    assert sub({"x": "fut_1"}, value) == {"x": value}
    assert sub({"x": "  fut_1 "}, value) == {"x": value}


def test_field_and_index_paths() -> None:
    value = {"price": 9.5, "items": [{"name": "a"}, {"name": "b", "tags": ["t0", "t1"]}], "my-key": 1}
    assert sub({"p": "fut_1.price"}, value) == {"p": 9.5}
    assert sub({"p": "fut_1.items[1].name"}, value) == {"p": "b"}
    assert sub({"p": "fut_1.items[1].tags[0]"}, value) == {"p": "t0"}
    assert sub({"p": "fut_1.items"}, value) == {"p": value["items"]}
    assert sub({"p": "fut_1.my-key"}, value) == {"p": 1}
    assert sub({"p": "fut_1[2]"}, [1, 2, 3]) == {"p": 3}
    # a field of a result that is a JSON text is looked up in the parsed text
    assert sub({"p": "fut_1.a"}, '{"a": 7}') == {"p": 7}


def test_interpolation_inside_longer_strings() -> None:
    values: list[Any] = ["Oslo", 12, {"k": [1, 2]}, None]
    assert sub({"q": "weather in fut_1 today"}, *values) == {"q": "weather in Oslo today"}
    assert sub({"q": "fut_2 EUR"}, *values) == {"q": "12 EUR"}
    assert sub({"q": "data: fut_3"}, *values) == {"q": 'data: {"k": [1, 2]}'}
    assert sub({"q": "x=fut_3.k[1]; y=fut_4"}, *values) == {"q": "x=2; y=null"}
    assert sub({"q": "fut_1/fut_2"}, *values) == {"q": "Oslo/12"}


def test_nested_arguments_and_non_references_untouched() -> None:
    args = {
        "a": ["fut_1", {"b": "fut_2.x", "c": 3}],
        "d": {"e": ["plain", "prefix fut_1"]},
        "n": 5,
        "f": False,
        "z": None,
        "word": "future fut fut_ myfut_1",
    }
    out = sub(args, 10, {"x": [1]})
    assert out == {
        "a": [10, {"b": [1], "c": 3}],
        "d": {"e": ["plain", "prefix 10"]},
        "n": 5,
        "f": False,
        "z": None,
        "word": "future fut fut_ myfut_1",
    }
    assert args["a"] == ["fut_1", {"b": "fut_2.x", "c": 3}]  # input not mutated


def test_unknown_future() -> None:
    with pytest.raises(ReferenceError_) as exc:
        sub({"x": "fut_9"}, 1)
    assert exc.value.error.kind is ErrorKind.UNKNOWN_FUTURE
    assert "unknown future fut_9" in exc.value.error.message
    with pytest.raises(ReferenceError_) as inside:
        sub({"x": "see fut_2.a"}, 1)
    assert "fut_2.a" in inside.value.error.message


def test_missing_field_and_index() -> None:
    with pytest.raises(ReferenceError_) as exc:
        sub({"x": "fut_1.nope"}, {"price": 1})
    assert exc.value.error.kind is ErrorKind.UNKNOWN_FUTURE
    assert "no field 'nope'" in exc.value.error.message and "fut_1.nope" in exc.value.error.message
    with pytest.raises(ReferenceError_) as idx:
        sub({"x": "fut_1.items[5]"}, {"items": [1]})
    assert "no item [5]" in idx.value.error.message
    with pytest.raises(ReferenceError_, match="no field"):
        sub({"x": "fut_1.a"}, 3)


def test_failed_dependency_message() -> None:
    with pytest.raises(ReferenceError_) as exc:
        sub({"x": "fut_1"}, CallError(ErrorKind.TOOL_ERROR, "disk full"))
    err = exc.value.error
    assert err.kind is ErrorKind.DEPENDENCY_FAILED
    assert "fut_1" in err.message and "tool_error" in err.message and "disk full" in err.message


def test_find_references() -> None:
    args = {
        "a": "fut_1",
        "b": ["x fut_2.y z", {"c": "fut_12[0]"}],
        "d": 3,
        "e": "fut_ fut_x myfut_7 future",
    }
    assert find_references(args) == {1, 2, 12}
    assert find_references({"a": "nothing here"}) == set()
    assert find_references("fut_3 and fut_3.a") == {3}


def test_is_reference() -> None:
    assert is_reference("fut_1") and is_reference(" fut_2.a[0] ")
    assert not is_reference("dir/fut_1") and not is_reference("fut_1 and more")
    assert not is_reference(1) and not is_reference("fut_")


def test_widen_schema() -> None:
    params = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "n"},
            "count": {"type": "integer"},
            "opts": {"type": "object"},
        },
        "required": ["name", "count"],
    }
    widened = widen_schema(params)
    props = widened["properties"]
    assert props["name"] == {"type": "string", "description": "n"}
    assert props["count"]["anyOf"][0] == {"type": "integer"}
    assert props["count"]["anyOf"][1]["type"] == "string"
    assert props["count"]["anyOf"][1] == {"type": "string"}  # a reference; the instructions say how
    assert props["opts"]["anyOf"][0] == {"type": "object"}
    assert widened["required"] == ["name", "count"]
    assert params["properties"]["count"] == {"type": "integer"}  # not mutated
    assert widen_schema({"type": "object"}) == {"type": "object"}


def test_string_parameters_receive_values_as_text() -> None:
    table = futures(270.0, {"a": 1})
    out = substitute(
        {"content": "fut_1", "n": "fut_1", "note": "fut_2"}, table.get, text_params={"content", "note"}
    )
    assert out == {"content": "270.0", "n": 270.0, "note": '{"a": 1}'}


_texts = st.lists(
    st.sampled_from(["fut_", "fut_1", "7", ".a", "[0]", " ", "x", "\n", "\\", '"', "é", "_"]), max_size=6
).map("".join)
_json_values = st.recursive(
    st.none() | st.integers() | _texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_texts, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.dictionaries(_texts, _json_values, max_size=4), st.booleans())
def test_references_read_from_the_text_match_the_parsed_arguments(
    args: dict[str, Any], ascii_only: bool
) -> None:
    """The scheduler scans the JSON text when it has no escapes; it must find what a walk finds."""
    raw = json.dumps(args, ensure_ascii=ascii_only)
    assert references_in(raw, json.loads(raw)) == sorted(find_references(json.loads(raw)))


def test_references_spelled_with_escapes_are_found() -> None:
    raw = r'{"a": "\u0066ut_2", "b": "x\nfut_3", "c": "xfut_4"}'
    assert references_in(raw, json.loads(raw)) == [2, 3]


_finite_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(_finite_json, st.booleans())
def test_dumps_writes_what_json_dumps_writes(value: Any, ensure_ascii: bool) -> None:
    """``dumps`` keeps one C encoder instead of building one per call: the text must not change."""
    assert dumps(value, ensure_ascii=ensure_ascii) == json.dumps(
        value, default=str, ensure_ascii=ensure_ascii
    )
