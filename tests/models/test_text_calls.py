"""Recovering tool calls that a model wrote as JSON text."""

from __future__ import annotations

import json

from asyncfc.models.text_calls import is_format_error, parse_text_calls
from asyncfc.testing.simserver import LLAMA_FORMAT_ERROR

TOOLS = ["get_weather", "add"]


def args(calls: list[tuple[str, str]]) -> list[tuple[str, object]]:
    return [(name, json.loads(a)) for name, a in calls]


def test_bare_object() -> None:
    text = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    assert args(parse_text_calls(text, TOOLS)) == [("get_weather", {"city": "Paris"})]


def test_bare_object_inside_prose() -> None:
    text = 'Sure, calling it now: {"name": "add", "arguments": {"a": 1, "b": 2}} and done.'
    assert args(parse_text_calls(text, TOOLS)) == [("add", {"a": 1, "b": 2})]


def test_json_list() -> None:
    text = '[{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "add", "arguments": {"a": 1, "b": 2}}]'
    assert args(parse_text_calls(text, TOOLS)) == [
        ("get_weather", {"city": "Paris"}),
        ("add", {"a": 1, "b": 2}),
    ]


def test_fenced_block() -> None:
    text = 'I will check.\n```json\n{"name": "get_weather", "arguments": {"city": "Tokyo"}}\n```\n'
    assert args(parse_text_calls(text, TOOLS)) == [("get_weather", {"city": "Tokyo"})]


def test_several_fenced_blocks_keep_order() -> None:
    text = (
        '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```\n'
        '```json\n{"name": "get_weather", "arguments": {"city": "Tokyo"}}\n```\n'
        '```\n{"name": "add", "arguments": {"a": 17, "b": 25}}\n```'
    )
    assert args(parse_text_calls(text, TOOLS)) == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Tokyo"}),
        ("add", {"a": 17, "b": 25}),
    ]


def test_several_bare_objects_on_lines() -> None:
    text = '{"name": "add", "arguments": {"a": 1, "b": 2}}\n{"name": "add", "arguments": {"a": 3, "b": 4}}'
    assert args(parse_text_calls(text, TOOLS)) == [("add", {"a": 1, "b": 2}), ("add", {"a": 3, "b": 4})]


def test_unknown_tool_is_ignored() -> None:
    text = '{"name": "hello", "arguments": {"lang": "fr"}} {"name": "add", "arguments": {"a": 1, "b": 2}}'
    assert args(parse_text_calls(text, TOOLS)) == [("add", {"a": 1, "b": 2})]
    assert parse_text_calls('{"name": "hello", "arguments": {}}', TOOLS) == []


def test_garbage_is_ignored() -> None:
    for text in [
        "",
        "just words, no calls",
        "{not json at all}",
        '```json\n{"name": "add", "arguments": {"a": 1,\n```',  # truncated
        "[1, 2, 3] and {} and []",
        '{"name": "add"',
        '{"name": ["add"], "arguments": {}}',
        '{"name": "add", "arguments": [1, 2]}',
        "{'name': 'add', 'arguments': {'a': 1}}",  # Python literal: never evaluated
        '{"name": "__import__(\'os\')", "arguments": {}}',
    ]:
        assert parse_text_calls(text, TOOLS) == [], text


def test_argument_variants() -> None:
    # arguments as a JSON string (OpenAI style), "parameters" alias, missing arguments
    assert args(parse_text_calls('{"name": "add", "arguments": "{\\"a\\": 1}"}', TOOLS)) == [
        ("add", {"a": 1})
    ]
    assert args(parse_text_calls('{"name": "add", "parameters": {"a": 2}}', TOOLS)) == [("add", {"a": 2})]
    assert args(parse_text_calls('{"name": "get_weather"}', TOOLS)) == [("get_weather", {})]
    assert parse_text_calls('{"name": "add", "arguments": "not json"}', TOOLS) == []


def test_nested_braces_in_string_values() -> None:
    text = '```json\n{"name": "add", "arguments": {"a": "{x}", "b": "[y"}}\n```'
    assert args(parse_text_calls(text, TOOLS)) == [("add", {"a": "{x}", "b": "[y"})]


def test_is_format_error() -> None:
    assert is_format_error(RuntimeError(LLAMA_FORMAT_ERROR))
    assert not is_format_error(RuntimeError("connection refused"))

    class Status(Exception):
        def __init__(self, status_code: int, message: str) -> None:
            super().__init__(message)
            self.status_code = status_code
            self.message = message

    assert is_format_error(Status(500, LLAMA_FORMAT_ERROR))
    assert is_format_error(Status(200, LLAMA_FORMAT_ERROR))  # error event inside a streamed response
    assert not is_format_error(Status(400, LLAMA_FORMAT_ERROR))
    assert not is_format_error(Status(500, "out of memory"))
