"""BFCL backends as asyncfc tools: schemas, result formatting, annotations applied."""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

pytest.importorskip("bfcl_eval")

import mpmath  # noqa: E402
from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_utils  # noqa: E402

import asyncfc_bench.bfcl as bfcl  # noqa: E402
from asyncfc_bench.bfcl.calls import parse_call  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_process_state() -> Iterator[None]:
    """Backends set mpmath's and decimal's precision process-wide; leave them as found."""
    dps, prec = mpmath.mp.dps, decimal.getcontext().prec
    yield
    mpmath.mp.dps, decimal.getcontext().prec = dps, prec


JSON_TYPES = {"object", "array", "string", "number", "integer", "boolean"}


def _types(schema: dict[str, Any]) -> Any:
    yield schema["type"]
    for sub in schema.get("properties", {}).values():
        yield from _types(sub)
    if "items" in schema:
        yield from _types(schema["items"])


def test_openai_schemas_are_valid_json_schema() -> None:
    count = 0
    for cls in bfcl.CLASSES:
        for doc in bfcl.function_docs(cls):
            schema = bfcl.openai_schema(doc)
            assert set(schema) == {"name", "description", "parameters"}
            params = schema["parameters"]
            jsonschema.Draft202012Validator.check_schema(params)
            assert params["type"] == "object"
            assert set(_types(params)) <= JSON_TYPES, doc["name"]
            for name, prop in doc["parameters"]["properties"].items():
                if prop["type"] == "float":
                    out = params["properties"][name]
                    assert out["type"] == "number" and out["format"] == "float"
                    assert out["description"].endswith(" This is a float type value.")
            count += 1
    assert count == 128
    (edit,) = [d for d in bfcl.function_docs("TicketAPI") if d["name"] == "edit_ticket"]
    updates = bfcl.openai_schema(edit)["parameters"]["properties"]["updates"]
    assert updates["type"] == "object" and updates["properties"]["priority"]["type"] == "integer"


def test_docs_and_signatures_name_the_same_parameters() -> None:
    instances = bfcl.make_instances(bfcl.CLASSES, {})
    order = bfcl.signature_param_order(instances)
    for cls in bfcl.CLASSES:
        for doc in bfcl.function_docs(cls):
            props = list(doc["parameters"]["properties"])
            assert sorted(order[doc["name"]]) == sorted(props), doc["name"]
            if doc["name"] != "purchase_insurance":  # the one doc whose order differs
                assert list(order[doc["name"]]) == props


def test_tools_format_results_and_errors_like_the_official_executor() -> None:
    calls = [
        "get_flight_cost(travel_from='XXX', travel_to='LAX', travel_date='2024-01-01', travel_class='economy')",
        "get_flight_cost(travel_from='SFO', travel_to='LAX', travel_date='2024-01-01', travel_class='economy')",
        "list_all_airports()",
        "compute_exchange_rate(base_currency='USD', target_currency='EUR', value=10, extra=1)",
        "logarithm(value=8, base=2, precision=5)",
        "square_root(number=2, precision=5)",
    ]
    classes = ["TravelAPI", "MathAPI"]
    instances = bfcl.make_instances(classes, {})
    tools = {t.name: t for t in bfcl.make_tools(instances)}
    order = bfcl.signature_param_order(instances)
    ours = []
    for source in calls:
        name, kwargs = parse_call(source, order)
        ours.append(tools[name].fn(**kwargs))
    try:
        official, _ = multi_turn_utils.execute_multi_turn_func_call(
            calls, {}, classes, "asyncfc_calls_test", "multi_turn_base_0"
        )
    finally:
        for key in [k for k in vars(multi_turn_utils) if k.startswith("asyncfc_calls_test")]:
            del vars(multi_turn_utils)[key]
    assert ours == official
    assert ours[0] == "Error during execution: No available route for the given airports."
    assert ours[2].startswith("['RMS'")  # a list: str(), not JSON
    assert ours[3].startswith("Error during execution: ") and "extra" in ours[3]
    assert ours[4] == "{'result': mpf('3.0')}"  # not JSON-serialisable: str() of the dict


def test_make_tools_applies_annotations_and_filters() -> None:
    instances = bfcl.make_instances(["GorillaFileSystem", "MathAPI"], {})
    tools = {t.name: t for t in bfcl.make_tools(instances)}
    assert len(tools) == 35
    assert tools["cd"].writes == ("fs/cwd",) and tools["cd"].reads == ("fs/tree",)
    assert tools["add"].pure
    bare = {t.name: t for t in bfcl.make_tools(instances, annotations=None, names=["cd", "add"])}
    assert set(bare) == {"cd", "add"}
    assert bare["add"].reads == ("",) and bare["add"].writes == ("",)  # unannotated: the root
    assert tools["cd"].fn(folder="nowhere").startswith('{"error"')
