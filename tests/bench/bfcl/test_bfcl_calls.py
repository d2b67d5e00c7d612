"""BFCL call strings: parsed without eval, rendered as the checker expects (no bfcl_eval needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asyncfc_bench.bfcl.calls import CallSyntaxError, parse_call, parse_calls, to_call_string

ORDER = {"sort": ["file_name"], "mv": ["source", "destination"]}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("cd(folder='document')", ("cd", {"folder": "document"})),
        ("sort('final_report.pdf')", ("sort", {"file_name": "final_report.pdf"})),
        ("mv('a', destination='b')", ("mv", {"source": "a", "destination": "b"})),
        ("pwd()", ("pwd", {})),
        (
            "f(a=-1.5, b=[1, 'x'], c={'k': None}, d=True, e=(1, 2))",
            ("f", {"a": -1.5, "b": [1, "x"], "c": {"k": None}, "d": True, "e": (1, 2)}),
        ),
        ("  grep(file_name='a',pattern='b')  ", ("grep", {"file_name": "a", "pattern": "b"})),
    ],
)
def test_parse_call(source: str, expected: tuple[str, dict[str, Any]]) -> None:
    assert parse_call(source, ORDER) == expected


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os').system('true')",
        "os.system('true')",
        "cd(folder=pwd())",
        "cd(folder=x)",
        "cd(folder='a' + 'b')",
        "cd(folder=f'{1}')",
        "cd(**{'folder': 'a'})",
        "cd(*['a'])",
        "sort('a', 'b')",
        "cd('a')",
        "mv('a', source='b')",
        "lambda: 1",
        "cd(folder='a'",
        "1 + 1",
    ],
)
def test_parse_call_rejects_anything_but_literal_calls(source: str) -> None:
    with pytest.raises(CallSyntaxError):
        parse_call(source, ORDER)


def test_parse_calls_accepts_a_list_or_a_single_call() -> None:
    assert parse_calls("[pwd(), sort('a')]", ORDER) == [("pwd", {}), ("sort", {"file_name": "a"})]
    assert parse_calls("pwd()") == [("pwd", {})]
    with pytest.raises(CallSyntaxError):
        parse_calls("[pwd(), exec('x')()]")


def test_to_call_string_round_trips() -> None:
    kwargs = {"content": 'it\'s "quoted"\n', "tags": ["#a"], "n": 2.5, "flag": False, "none": None}
    source = to_call_string("post", kwargs)
    assert source.startswith("post(content=")
    assert parse_call(source) == ("post", kwargs)
    assert to_call_string("cd", {"folder": "temp"}) == "cd(folder='temp')"
    assert to_call_string("pwd", {}) == "pwd()"


def test_to_call_string_from_openai_arguments() -> None:
    """Same as bfcl's convert_to_function_call on a tool call's JSON arguments."""
    arguments = '{"source": "final_report.pdf", "destination": "temp"}'
    assert to_call_string("mv", json.loads(arguments)) == "mv(source='final_report.pdf',destination='temp')"
