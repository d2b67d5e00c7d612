"""The BFCL read/write annotations hold on the real backends.

Every ground-truth call of the four multi-turn categories (plus probe calls for the
functions the ground truth never uses) runs on fresh instances while we

* snapshot all instance attributes (private ones, RNG state, the cwd) and the
  process-wide state before and after: whatever changed must lie under a declared write
  label (so a pure or read-only call changes nothing);
* trace the instance attributes the call reads: each must lie under a declared read or
  write label.
"""

from __future__ import annotations

import decimal
import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest

pytest.importorskip("bfcl_eval")

import mpmath  # noqa: E402
from bfcl_eval.eval_checker.multi_turn_eval.func_source_code import (  # noqa: E402
    gorilla_file_system,
    long_context,
    posting_api,
)

from asyncfc.tools import ROOT, Tool  # noqa: E402
from asyncfc_bench.bfcl import (  # noqa: E402
    ANNOTATIONS,
    CLASS_ANNOTATIONS,
    CLASSES,
    LABEL_ATTRIBUTES,
    function_docs,
    load_all,
    make_instances,
    make_tools,
    parse_call,
    signature_param_order,
)
from asyncfc_bench.bfcl.annotations import (  # noqa: E402
    CLASS_LABEL,
    CONSTANT_ATTRIBUTES,
    PROCESS_LABELS,
)

File = gorilla_file_system.File
Directory = gorilla_file_system.Directory

PROCESS_STATE: dict[str, Callable[[], Any]] = {
    "math/mpmath": lambda: mpmath.mp.dps,
    "math/decimal": lambda: decimal.getcontext().prec,
    "vehicle/weather": lambda: freeze(long_context.LONG_WEATHER_EXTENSION),
}

EXTRA_READS: dict[str, tuple[str, ...]] = {"_current_dir": ("fs/cwd", "fs/tree")}
"""``_current_dir`` points into the tree: reading through it reads the tree too."""


def freeze(value: Any) -> Any:
    """A comparable deep snapshot (cheaper than deepcopy, and it sees RNG state)."""
    t = type(value)
    if t in (str, int, float, bool, type(None), type(...)):
        return value
    if t is dict:
        return ("dict", tuple((freeze(k), freeze(v)) for k, v in value.items()))
    if t in (list, tuple):
        return (t.__name__, tuple(freeze(v) for v in value))
    if t is set:
        return ("set", frozenset(freeze(v) for v in value))
    if isinstance(value, random.Random):
        return ("rng", value.getstate())
    if isinstance(value, Directory):
        return ("dir", value.name, freeze(value.contents))
    if isinstance(value, File):
        return ("file", value.name, value.content, value._last_modified)
    raise TypeError(f"cannot snapshot {t.__name__}")


def snapshot_instance(inst: Any) -> dict[str, Any]:
    state = {}
    for name, value in vars(inst).items():
        # the cwd is a pointer: its identity is fs/cwd, its contents belong to fs/tree
        state[name] = id(value) if name == "_current_dir" else freeze(value)
    return state


def region_of(class_name: str) -> dict[str, str]:
    """Attribute -> the label that covers it, for one class."""
    prefix = CLASS_LABEL[class_name] + "/"
    return {
        attr: label for label, attrs in LABEL_ATTRIBUTES.items() if label.startswith(prefix) for attr in attrs
    }


REGIONS = {cls: region_of(cls) for cls in CLASSES}


def covered(region: str, declared: set[str]) -> bool:
    """A declared label covers a region when it is the region or an ancestor of it."""
    return any(d == ROOT or region == d or region.startswith(d + "/") for d in declared)


_TRACED: dict[type[Any], type[Any]] = {}


def trace_reads(inst: Any, log: set[str]) -> None:
    """Swap the instance's class for a subclass that records attribute reads into ``log``."""
    cls = type(inst)
    traced = _TRACED.get(cls)
    if traced is None:

        def __getattribute__(self: Any, name: str) -> Any:
            log_ = object.__getattribute__(self, "__dict__").get("_asyncfc_read_log")
            if log_ is not None:
                log_.add(name)
            return object.__getattribute__(self, name)

        traced = type(f"Traced{cls.__name__}", (cls,), {"__getattribute__": __getattribute__})
        _TRACED[cls] = traced
    inst.__class__ = traced
    inst.__dict__["_asyncfc_read_log"] = log


class Checker:
    """Runs calls on one set of instances and collects annotation violations."""

    def __init__(self, instances: dict[str, Any]) -> None:
        self.instances = instances
        self.tools: dict[str, Tool] = {t.name: t for t in make_tools(instances)}
        self.owner = {t: cls for cls in instances for t in CLASS_ANNOTATIONS[cls]}
        self.order = signature_param_order(instances)
        self.reads: dict[str, set[str]] = {cls: set() for cls in instances}
        for cls, inst in instances.items():
            trace_reads(inst, self.reads[cls])
        self.violations: list[str] = []
        self.before = self._snapshot()

    def _snapshot(self) -> dict[str, Any]:
        state: dict[str, Any] = {label: get() for label, get in PROCESS_STATE.items()}
        for cls, inst in self.instances.items():
            log = inst.__dict__.pop("_asyncfc_read_log")
            state[cls] = snapshot_instance(inst)
            inst.__dict__["_asyncfc_read_log"] = log
        return state

    def run(self, source: str, where: str) -> str:
        name, kwargs = parse_call(source, self.order)
        tool = self.tools[name]
        reads, writes = tool.labels(kwargs, lambda _v: False)
        for log in self.reads.values():
            log.clear()
        result: str = tool.fn(**kwargs)
        cls = self.owner[name]
        read_attrs = set(self.reads[cls])
        for other, log in self.reads.items():
            if other != cls and log:
                self.violations.append(f"{where}: {source} read {other} attributes {sorted(log)}")
        after = self._snapshot()
        for label in PROCESS_STATE:
            if after[label] != self.before[label] and not covered(label, writes):
                self.violations.append(f"{where}: {source} changed {label}, declares writes {writes}")
        regions = REGIONS[cls]
        for other in self.instances:
            old, new = self.before[other], after[other]
            for attr in old.keys() | new.keys():
                if old.get(attr) == new.get(attr):
                    continue
                region = REGIONS[other].get(attr)
                if region is None or not covered(region, writes):
                    self.violations.append(
                        f"{where}: {source} changed {other}.{attr} ({region}), declares writes {writes}"
                    )
        for attr in read_attrs:
            if attr in CONSTANT_ATTRIBUTES or attr not in after[cls]:
                continue  # constants, methods and class attributes
            needed = EXTRA_READS.get(attr, (regions[attr],))
            missing = [r for r in needed if not covered(r, reads | writes)]
            if missing:
                self.violations.append(f"{where}: {source} read {cls}.{attr} ({missing}) undeclared")
        self.before = after
        return result


@pytest.fixture(autouse=True)
def _restore_process_state() -> Iterator[None]:
    dps, prec = mpmath.mp.dps, decimal.getcontext().prec
    weather = dict(long_context.LONG_WEATHER_EXTENSION)
    yield
    mpmath.mp.dps, decimal.getcontext().prec = dps, prec
    long_context.LONG_WEATHER_EXTENSION.clear()
    long_context.LONG_WEATHER_EXTENSION.update(weather)


def _constants() -> Any:
    """Process-wide data no call may change (module data the instances must not alias)."""
    return (
        freeze(posting_api.TwitterAPI.post_tweet.__defaults__),
        freeze(
            {k: v for k, v in vars(long_context).items() if k.isupper() and k != "LONG_WEATHER_EXTENSION"}
        ),
    )


# --------------------------------------------------------------------------- static


def test_table_covers_every_function_of_every_class() -> None:
    assert len(ANNOTATIONS) == 128
    for cls in CLASSES:
        assert set(CLASS_ANNOTATIONS[cls]) == {d["name"] for d in function_docs(cls)}, cls


def test_every_label_is_in_the_state_tree() -> None:
    known = set(LABEL_ATTRIBUTES) | set(PROCESS_LABELS)
    for name, access in ANNOTATIONS.items():
        for label in access.reads + access.writes:
            if "{" in label:
                continue
            assert label in known, (name, label)
    for cls, table in CLASS_ANNOTATIONS.items():
        for access in table.values():
            for label in access.reads + access.writes:
                assert label.split("/")[0] == CLASS_LABEL[cls]


def test_display_car_status_options_are_labels() -> None:
    (doc,) = [d for d in function_docs("VehicleControlAPI") if d["name"] == "displayCarStatus"]
    options = re.findall(r'"(\w+)"', doc["parameters"]["properties"]["option"]["description"])
    assert "fuel" in options and "parkingBrake" in options
    for option in options:
        assert f"vehicle/{option}" in LABEL_ATTRIBUTES, option


@pytest.mark.parametrize("long_ctx", [False, True])
def test_label_attributes_cover_all_instance_state(long_ctx: bool) -> None:
    instances = make_instances(CLASSES, {}, long_context=long_ctx)
    for cls, inst in instances.items():
        mapped = set(REGIONS[cls]) | set(CONSTANT_ATTRIBUTES)
        assert set(vars(inst)) <= mapped, (cls, set(vars(inst)) - mapped)
        assert set(REGIONS[cls]) <= set(vars(inst)), (cls, set(REGIONS[cls]) - set(vars(inst)))


# --------------------------------------------------------------------------- dynamic


def test_ground_truth_calls_touch_only_declared_state() -> None:
    constants = _constants()
    violations: list[str] = []
    calls = 0
    for entry in load_all():
        checker = Checker(
            make_instances(entry.involved_classes, entry.initial_config, long_context=entry.long_context)
        )
        for turn, gt in enumerate(entry.ground_truth):
            for source in gt:
                checker.run(source, f"{entry.id}[{turn}]")
                calls += 1
        violations += checker.violations
    assert calls == 4625
    assert not violations, "\n".join(violations[:40])
    assert _constants() == constants


Probe = str | Callable[[Mapping[str, Any]], str]


def _travel(fmt: str) -> Callable[[Mapping[str, Any]], str]:
    """A call string filled in from TravelAPI state (token, a card, a booking)."""

    def make(instances: Mapping[str, Any]) -> str:
        t = instances["TravelAPI"]
        return fmt.format(
            token=t.access_token,
            card=next(iter(t.credit_card_list), "none"),
            booking=next(iter(t.booking_record), "none"),
        )

    return make


PROBES: dict[str, Sequence[Probe]] = {
    "GorillaFileSystem": [
        "pwd()", "ls()", "mkdir(dir_name='d')", "cd(folder='d')", "pwd()",
        "touch(file_name='a.txt')", "echo(content='b\\na\\nab', file_name='a.txt')",
        "echo(content='hi')", "cat(file_name='a.txt')", "cp(source='a.txt', destination='b.txt')",
        "wc(file_name='a.txt', mode='w')", "sort(file_name='a.txt')", "grep(file_name='a.txt', pattern='a')",
        "tail(file_name='a.txt', lines=1)", "diff(file_name1='a.txt', file_name2='b.txt')",
        "mkdir(dir_name='e')", "mv(source='b.txt', destination='e')", "mv(source='a.txt', destination='c.txt')",
        "du(human_readable=True)", "find(path='.', name='t')", "rm(file_name='c.txt')", "cd(folder='..')",
        "ls(a=True)", "find()", "rmdir(dir_name='d')", "mkdir(dir_name='f')", "rmdir(dir_name='f')", "cd(folder='nowhere')", "cd(folder='..')",
    ],
    "MathAPI": [
        "logarithm(value=100, base=10, precision=7)", "square_root(number=2, precision=12)",
        "mean(numbers=[1, 2])", "standard_deviation(numbers=[1, 2, 4])",
        "si_unit_conversion(value=1, unit_in='km', unit_out='m')",
        "imperial_si_conversion(value=1, unit_in='miles', unit_out='km')", "add(a=1, b=2)",
        "subtract(a=1, b=2)", "multiply(a=2, b=3)", "divide(a=1, b=0)", "divide(a=1, b=4)",
        "power(base=2, exponent=10)", "absolute_value(number=-3)", "round_number(number=2.567, decimal_places=1)",
        "percentage(part=1, whole=4)", "min_value(numbers=[3, 1])", "max_value(numbers=[3, 1])",
        "sum_values(numbers=[3, 1])", "logarithm(value=8, base=2, precision=30)",
    ],
    "MessageAPI": [
        "list_users()", "get_user_id(user='Bob')", "message_get_login_status()", "search_messages(keyword='file')",
        "get_message_stats()", "send_message(receiver_id='USR002', message='x')", "message_login(user_id='USR001')",
        "message_get_login_status()", "send_message(receiver_id='USR002', message='hello file')",
        "send_message(receiver_id='USR003', message='hi')", "view_messages_sent()",
        "search_messages(keyword='file')", "get_message_stats()", "delete_message(receiver_id='USR002')",
        "add_contact(user_name='Zed')", "add_contact(user_name='Zed')", "list_users()",
    ],
    "TwitterAPI": [
        "posting_get_login_status()", "post_tweet(content='no')", "follow_user(username_to_follow='x')",
        "authenticate_twitter(username='john', password='wrong')",
        "authenticate_twitter(username='john', password='john123')", "posting_get_login_status()",
        "post_tweet(content='first')", "mention(tweet_id=0, mentioned_usernames=['@a'])",
        "post_tweet(content='second', tags=['#t'])", "get_tweet(tweet_id=1)", "get_tweet(tweet_id=9)",
        "get_user_tweets(username='john')", "search_tweets(keyword='#t')",
        "comment(tweet_id=0, comment_content='c')", "get_tweet_comments(tweet_id=0)", "retweet(tweet_id=1)",
        "retweet(tweet_id=1)", "follow_user(username_to_follow='carol')", "list_all_following()",
        "unfollow_user(username_to_unfollow='alice')", "get_user_stats(username='john')",
    ],
    "TicketAPI": [
        "ticket_get_login_status()", "get_user_tickets()", "create_ticket(title='t')", "logout()",
        "ticket_login(username='u', password='p')", "create_ticket(title='t', description='d', priority=3)",
        "get_user_tickets(status='Open')", "get_ticket(ticket_id=1)",
        "edit_ticket(ticket_id=1, updates={'priority': 4, 'title': None})",
        "resolve_ticket(ticket_id=1, resolution='done')", "close_ticket(ticket_id=1)", "close_ticket(ticket_id=1)",
        "ticket_get_login_status()", "logout()", "logout()",
    ],
    "TradingBot": [
        "get_current_time()", "get_symbol_by_name(name='Apple')", "trading_get_login_status()",
        "get_order_history()", "get_transaction_history()", "fund_account(amount=10)",
        "trading_login(username='u', password='p')", "trading_login(username='u', password='p')",
        "fund_account(amount=100)", "withdraw_funds(amount=10)", "get_transaction_history()",
        "get_transaction_history(start_date='2024-09-01', end_date='2024-09-03')", "get_account_info()",
        "get_stock_info(symbol='AAPL')", "get_available_stocks(sector='Technology')",
        "filter_stocks_by_price(stocks=['AAPL', 'GOOG'], min_price=0, max_price=1000)",
        "notify_price_change(stocks=['AAPL', 'NVDA'], threshold=0.1)",
        "place_order(order_type='Buy', symbol='AAPL', price=1.5, amount=2)", "get_order_history()",
        "get_order_details(order_id=12446)", "cancel_order(order_id=12446)", "add_to_watchlist(stock='AAPL')",
        "get_watchlist()", "remove_stock_from_watchlist(symbol='AAPL')", "trading_logout()", "trading_logout()",
    ],
    "TravelAPI": [
        "travel_get_login_status()", "get_budget_fiscal_year()", "list_all_airports()",
        "get_nearest_airport_by_city(location='Rivermist')",
        "compute_exchange_rate(base_currency='USD', target_currency='EUR', value=10)",
        "get_flight_cost(travel_from='SFO', travel_to='LAX', travel_date='2024-11-15', travel_class='economy')",
        "get_flight_cost(travel_from='XXX', travel_to='LAX', travel_date='2024-11-15', travel_class='economy')",
        "authenticate_travel(client_id='c', client_secret='s', refresh_token='r', grant_type='read_write',"
        " user_first_name='Ann', user_last_name='Lee')",
        "travel_get_login_status()",
        _travel(
            "register_credit_card(access_token='{token}', card_number='4111', expiration_date='12/2030',"
            " cardholder_name='Ann Lee', card_verification_number=123)"
        ),
        "get_all_credit_cards()",
        _travel("get_credit_card_balance(access_token='{token}', card_id='{card}')"),
        _travel(
            "book_flight(access_token='{token}', card_id='{card}', travel_date='2024-11-15',"
            " travel_from='SFO', travel_to='LAX', travel_class='economy')"
        ),
        _travel("set_budget_limit(access_token='{token}', budget_limit=100)"),
        _travel("get_booking_history(access_token='{token}')"),
        _travel("retrieve_invoice(access_token='{token}', booking_id='{booking}')"),
        _travel(
            "purchase_insurance(access_token='{token}', insurance_type='comprehensive',"
            " booking_id='{booking}', insurance_cost=50, card_id='{card}')"
        ),
        _travel("contact_customer_support(booking_id='{booking}', message='help')"),
        "verify_traveler_information(first_name='Ann', last_name='Lee', date_of_birth='1990-01-01',"
        " passport_number='US123')",
        _travel("cancel_booking(access_token='{token}', booking_id='{booking}')"),
    ],
    "VehicleControlAPI": [
        "displayCarStatus(option='fuel')", "displayCarStatus(option='doors')", "displayCarStatus(option='nope')",
        "startEngine(ignitionMode='START')", "lockDoors(unlock=False, door=['driver', 'passenger'])",
        "lockDoors(unlock=False, door=['rear_left', 'rear_right'])", "pressBrakePedal(pedalPosition=1.0)",
        "fillFuelTank(fuelAmount=10)", "startEngine(ignitionMode='START')", "displayCarStatus(option='engine')",
        "setCruiseControl(speed=60, activate=True, distanceToNextVehicle=100)", "releaseBrakePedal()",
        "displayCarStatus(option='brakePedal')", "activateParkingBrake(mode='engage')",
        "displayCarStatus(option='parkingBrake')",
        "adjustClimateControl(temperature=70, unit='fahrenheit', fanSpeed=30, mode='cool')",
        "displayCarStatus(option='climate')", "setHeadlights(mode='on')", "displayCarStatus(option='headlights')",
        "displayCarStatus(option='battery')", "get_outside_temperature_from_google()",
        "get_outside_temperature_from_weather_com()", "get_current_speed()", "get_current_speed()",
        "display_log(messages=['a'])", "estimate_drive_feasibility_by_mileage(distance=10)",
        "liter_to_gallon(liter=10)", "gallon_to_liter(gallon=1)", "estimate_distance(cityA='83214', cityB='74532')",
        "get_zipcode_based_on_city(city='Rivermist')", "set_navigation(destination='1 Main St, Rivermist, CA')",
        "check_tire_pressure()", "find_nearest_tire_shop()", "lockDoors(unlock=True, door=['driver'])",
        "startEngine(ignitionMode='STOP')",
    ],
}  # fmt: skip


PROBE_CONFIG = {"TradingBot": {"market_status": "Open"}}


@pytest.mark.parametrize("long_ctx", [False, True])
def test_probe_calls_touch_only_declared_state(long_ctx: bool) -> None:
    """Every function (the ground truth uses only 81 of 128), in and out of its happy path."""
    constants = _constants()
    checker = Checker(make_instances(CLASSES, PROBE_CONFIG, long_context=long_ctx))
    used: set[str] = set()
    for cls, probes in PROBES.items():
        for probe in probes:
            source = probe if isinstance(probe, str) else probe(checker.instances)
            result = checker.run(source, f"probe {cls}")
            used.add(source.split("(")[0])
            assert "Error during execution" not in result or "XXX" in source, (source, result)
    assert used == set(ANNOTATIONS)
    assert not checker.violations, "\n".join(checker.violations)
    assert _constants() == constants


def test_hidden_state_is_declared() -> None:
    """The cases that look read-only but are not: each changes the state it declares."""
    instances = make_instances(CLASSES, {}, long_context=True)
    tools = {t.name: t for t in make_tools(instances)}

    def run(name: str, **kwargs: Any) -> str:
        return str(tools[name].fn(**kwargs))

    speeds = {run("get_current_speed") for _ in range(3)}
    assert len(speeds) == 3 and "vehicle/rng" in tools["get_current_speed"].writes
    fs = instances["GorillaFileSystem"]
    run("mkdir", dir_name="d")
    before = fs._current_dir
    run("cd", folder="d")
    assert fs._current_dir is not before and tools["cd"].writes == ("fs/cwd",)
    travel = instances["TravelAPI"]
    run(
        "get_flight_cost",
        travel_from="SFO",
        travel_to="LAX",
        travel_date="2024-11-15",
        travel_class="economy",
    )
    assert travel._flight_cost_lookup and "travel/fare_cache" in tools["get_flight_cost"].writes
    mpmath.mp.dps = 15
    run("logarithm", value=10, base=10, precision=40)
    assert mpmath.mp.dps == 40 and tools["logarithm"].writes == ("math/mpmath",)
    assert not tools["add"].reads and not tools["add"].writes


def test_mutable_defaults_do_not_leak_between_tweets() -> None:
    instances = make_instances(["TwitterAPI"], {"TwitterAPI": {"authenticated": True}})
    tools = {t.name: t for t in make_tools(instances)}
    tools["post_tweet"].fn(content="a")
    tools["mention"].fn(tweet_id=0, mentioned_usernames=["@x"])
    assert '"mentions": []' in tools["post_tweet"].fn(content="b")
    assert posting_api.TwitterAPI.post_tweet.__defaults__ == ([], [])
