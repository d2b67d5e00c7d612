"""The tasks: what a user asks, what counts as done, and one correct solution.

Prompts are written the way people ask an assistant, not tuned to any model; every task
is run and reported whatever its result. Shapes:

* ``fan-out``: independent lookups whose values the answer reports;
* ``chain``: each call needs the previous call's result;
* ``fan-in``: several lookups feeding one message or file;
* ``decision``: what to do depends on a looked-up value (the model must see it first);
* ``failure``: a tool fails mid-task; the answer must say so and nothing may claim success;
* ``multi-turn``: follow-up requests in one session that use earlier results;
* ``no-tool``: a question the model answers by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from asyncfc.testing.scripted import Ref, ScriptedCall, Turn
from asyncfc_bench.tasks import judge as j
from asyncfc_bench.tasks.judge import Check, Evidence
from asyncfc_bench.tasks.script import Text, seeing, step
from asyncfc_bench.tasks.world import CALENDAR, ORDERS

__all__ = [
    "BY_NAME",
    "SHAPES",
    "Shape",
    "TASKS",
    "Task",
    "select",
]

Shape = Literal["fan-out", "chain", "fan-in", "decision", "failure", "multi-turn", "no-tool"]
SHAPES: tuple[Shape, ...] = ("fan-out", "chain", "fan-in", "decision", "failure", "multi-turn", "no-tool")


@dataclass(frozen=True)
class Task:
    name: str
    shape: Shape
    turns: tuple[str, ...]
    """The user's messages, one per user turn (several for a multi-turn task)."""
    check: Check
    solution: Callable[[], list[list[Turn]]]
    """A fresh correct script per user turn (fresh: scripts may keep state)."""
    decides_on: tuple[str, ...] = ()
    """Tools whose values the model must see before its next step (gates the ideal)."""
    notes: str = field(default="", compare=False)


def W(city: object) -> ScriptedCall:  # noqa: N802 - short builders keep the solutions readable
    return ScriptedCall("get_weather", {"city": city})


def FX(base: str, quote: str) -> ScriptedCall:  # noqa: N802
    return ScriptedCall("get_exchange_rate", {"base": base, "quote": quote})


def STOCK(symbol: str) -> ScriptedCall:  # noqa: N802
    return ScriptedCall("get_stock_price", {"symbol": symbol})


def FLIGHT(number: str) -> ScriptedCall:  # noqa: N802
    return ScriptedCall("get_flight_status", {"flight": number})


def write(path: str, content: object) -> ScriptedCall:
    return ScriptedCall("write_file", {"path": path, "content": content})


def email(to: object, subject: str, body: object) -> ScriptedCall:
    return ScriptedCall("send_email", {"to": to, "subject": subject, "body": body})


def inventory_value(ev: Evidence, value: int) -> list[str]:
    """A successful stock lookup that returned ``value`` (product names vary: desk, desks)."""
    ok = any(c.value == value for c in ev.ran("check_inventory"))
    return j.need(ok, f"no check_inventory call returned {value}")


def new_events(ev: Evidence, date: str) -> list[dict[str, str]]:
    return ev.world.calendar.get(date, [])[len(CALENDAR.get(date, [])) :]


def one_event(ev: Evidence, date: str, time: str, word: str) -> list[str]:
    events = new_events(ev, date)
    if len(events) != 1:
        return [f"{len(events)} new events on {date}, expected one"]
    e = events[0]
    return j.need(e["time"] == time and j.has_text(e["title"], word), f"event {e} is not {word!r} at {time}")


def only_numbers(ev: Evidence, path: str, allowed: Sequence[float]) -> list[str]:
    """If ``path`` was written, every number in it is one of ``allowed`` (nothing made up)."""
    content = ev.world.files.get(path)
    if content is None:
        return []
    extra = [n for n in j.numbers_in(content) if not any(abs(n - a) < 0.006 for a in allowed)]
    return j.need(not extra, f"{path} holds numbers no tool returned: {extra}")


def status_of(ev: Evidence, order: str, expected: str) -> list[str]:
    actual = ev.world.orders[order]["status"]
    return j.need(actual == expected, f"order {order} is {actual}, expected {expected}")


ANY = ("",)
"""Claims for :func:`judge.no_success_claims` meaning: any email must admit the failure."""


def _tasks() -> list[Task]:
    t: list[Task] = []
    add = t.append

    # ------------------------------------------------------------------ fan-out
    add(
        Task(
            "weather_three_cities",
            "fan-out",
            ("What's the weather like in Paris, Tokyo and London right now?",),
            j.all_of(
                lambda ev: j.looked_up(ev, "get_weather", city="Paris"),
                lambda ev: j.looked_up(ev, "get_weather", city="Tokyo"),
                lambda ev: j.looked_up(ev, "get_weather", city="London"),
                lambda ev: j.answer_numbers(ev, 18, 24, 15),
            ),
            lambda: [
                [
                    step(W("Paris"), W("Tokyo"), W("London")),
                    "Paris: 18 C, light rain. Tokyo: 24 C, sunny. London: 15 C, cloudy.",
                ]
            ],
        )
    )
    add(
        Task(
            "msft_vs_aapl",
            "fan-out",
            ("Which is trading higher right now, MSFT or AAPL? Give me both share prices.",),
            j.all_of(
                lambda ev: j.looked_up(ev, "get_stock_price", symbol="MSFT"),
                lambda ev: j.looked_up(ev, "get_stock_price", symbol="AAPL"),
                lambda ev: j.answer_numbers(ev, 412.6, 189.3),
            ),
            lambda: [
                [step(STOCK("MSFT"), STOCK("AAPL")), "MSFT is higher at 412.6 USD; AAPL is at 189.3 USD."]
            ],
        )
    )
    add(
        Task(
            "two_flights",
            "fan-out",
            ("Are flights LH441 and BA287 on time today?",),
            j.all_of(
                lambda ev: j.looked_up(ev, "get_flight_status", flight="LH441"),
                lambda ev: j.looked_up(ev, "get_flight_status", flight="BA287"),
                lambda ev: j.answer_text(ev, "on time", "delay"),
            ),
            lambda: [
                [
                    step(FLIGHT("LH441"), FLIGHT("BA287")),
                    "LH441 is on time (14:05, gate B12); BA287 is delayed 45 minutes.",
                ]
            ],
        )
    )
    add(
        Task(
            "stock_levels",
            "fan-out",
            ("How many standing desks, office chairs and desk lamps do we have in stock?",),
            j.all_of(
                lambda ev: inventory_value(ev, 3),
                lambda ev: inventory_value(ev, 12),
                lambda ev: inventory_value(ev, 25),
                lambda ev: j.answer_numbers(ev, 3, 12, 25),
            ),
            lambda: [
                [
                    step(
                        ScriptedCall("check_inventory", {"product": "standing desk"}),
                        ScriptedCall("check_inventory", {"product": "office chair"}),
                        ScriptedCall("check_inventory", {"product": "desk lamp"}),
                    ),
                    "We have 3 standing desks, 12 office chairs and 25 desk lamps.",
                ]
            ],
        )
    )
    add(
        Task(
            "two_rates",
            "fan-out",
            ("What are today's EUR to USD and EUR to GBP exchange rates?",),
            j.all_of(
                lambda ev: j.looked_up(ev, "get_exchange_rate", base="EUR", quote="USD"),
                lambda ev: j.looked_up(ev, "get_exchange_rate", base="EUR", quote="GBP"),
                lambda ev: j.answer_numbers(ev, 1.08, 0.85),
            ),
            lambda: [
                [step(FX("EUR", "USD"), FX("EUR", "GBP")), "EUR to USD is 1.08 and EUR to GBP is 0.85."]
            ],
        )
    )

    # ------------------------------------------------------------------ chains
    add(
        Task(
            "convert_to_file",
            "chain",
            ("Convert 250 euros to US dollars at today's rate and save the amount in usd.txt.",),
            j.all_of(
                lambda ev: j.looked_up(ev, "get_exchange_rate", base="EUR", quote="USD"),
                lambda ev: j.file_has(ev, "usd.txt", numbers=[270]),
            ),
            lambda: [
                [
                    step(FX("EUR", "USD")),
                    step(ScriptedCall("calculate", {"expression": Text("250 * {0}", Ref(1))})),
                    step(write("usd.txt", Text("250 EUR = {0} USD", Ref(2)))),
                    "250 EUR is 270 USD; I saved it in usd.txt.",
                ]
            ],
        )
    )
    add(
        Task(
            "order_customer_email",
            "chain",
            ("Look up order 1044 and email the customer that their order is being processed.",),
            j.all_of(
                lambda ev: j.looked_up(ev, "get_order", order_id="1044"),
                lambda ev: j.one_email(ev, "carla.diaz@example.com", numbers=[1044]),
            ),
            lambda: [
                [
                    step(ScriptedCall("get_order", {"order_id": "1044"})),
                    step(ScriptedCall("find_customer", {"name": Ref(1, ".customer")})),
                    step(
                        email(
                            Ref(2, ".email"),
                            "Your order 1044",
                            "Hello, your order 1044 is being processed. Thank you!",
                        )
                    ),
                    "I emailed Carla Diaz that order 1044 is being processed.",
                ]
            ],
        )
    )
    add(
        Task(
            "weather_for_customer",
            "chain",
            ("Email Dan Okafor the current weather in his city.",),
            j.all_of(
                lambda ev: j.looked_up(ev, "find_customer", name="Dan Okafor"),
                lambda ev: j.looked_up(ev, "get_weather", city="London"),
                lambda ev: j.one_email(ev, "dan.okafor@example.com", texts=["cloudy"], numbers=[15]),
            ),
            lambda: [
                [
                    step(ScriptedCall("find_customer", {"name": "Dan Okafor"})),
                    step(W(Ref(1, ".city"))),
                    step(email(Ref(1, ".email"), "Today's weather", Text("The weather now: {0}", Ref(2)))),
                    "I emailed Dan Okafor the weather in London.",
                ]
            ],
        )
    )
    add(
        Task(
            "package_to_file",
            "chain",
            ("Where is my package TRK-5521? Write its status to package.txt.",),
            j.all_of(
                lambda ev: j.looked_up(ev, "track_package", tracking_number="TRK-5521"),
                lambda ev: j.file_has(ev, "package.txt", texts=["friday"]),
            ),
            lambda: [
                [
                    step(ScriptedCall("track_package", {"tracking_number": "TRK-5521"})),
                    step(write("package.txt", Ref(1))),
                    "Your package is in transit, expected Friday; I wrote that to package.txt.",
                ]
            ],
        )
    )
    add(
        Task(
            "portfolio_value",
            "chain",
            ("I own 40 NVDA shares. What are they worth right now? Save the total to portfolio.txt.",),
            j.all_of(
                lambda ev: j.looked_up(ev, "get_stock_price", symbol="NVDA"),
                lambda ev: j.file_has(ev, "portfolio.txt", numbers=[4856]),
                lambda ev: j.answer_numbers(ev, 4856),
            ),
            lambda: [
                [
                    step(STOCK("NVDA")),
                    step(ScriptedCall("calculate", {"expression": Text("40 * {0}", Ref(1))})),
                    step(write("portfolio.txt", Text("40 NVDA shares: {0} USD", Ref(2)))),
                    "Your 40 NVDA shares are worth 4856 USD; saved to portfolio.txt.",
                ]
            ],
        )
    )

    # ------------------------------------------------------------------ fan-in
    add(
        Task(
            "weather_digest_email",
            "fan-in",
            ("Send alice.martin@example.com an email with today's weather in Paris, Madrid and Berlin.",),
            j.all_of(
                lambda ev: j.looked_up(ev, "get_weather", city="Paris"),
                lambda ev: j.looked_up(ev, "get_weather", city="Madrid"),
                lambda ev: j.looked_up(ev, "get_weather", city="Berlin"),
                lambda ev: j.one_email(ev, "alice.martin@example.com", numbers=[18, 27, 12]),
            ),
            lambda: [
                [
                    step(W("Paris"), W("Madrid"), W("Berlin")),
                    step(
                        email(
                            "alice.martin@example.com",
                            "Today's weather",
                            Text("{0}\n{1}\n{2}", Ref(1), Ref(2), Ref(3)),
                        )
                    ),
                    "I emailed Alice the weather in Paris, Madrid and Berlin.",
                ]
            ],
        )
    )
    add(
        Task(
            "rates_to_file",
            "fan-in",
            ("Write today's EUR to USD, EUR to JPY and EUR to GBP exchange rates to rates.txt.",),
            j.all_of(
                lambda ev: j.looked_up(ev, "get_exchange_rate", base="EUR", quote="JPY"),
                lambda ev: j.file_has(ev, "rates.txt", numbers=[1.08, 162.4, 0.85]),
            ),
            lambda: [
                [
                    step(FX("EUR", "USD"), FX("EUR", "JPY"), FX("EUR", "GBP")),
                    step(
                        write(
                            "rates.txt", Text("EUR/USD {0}\nEUR/JPY {1}\nEUR/GBP {2}", Ref(1), Ref(2), Ref(3))
                        )
                    ),
                    "I wrote the three rates to rates.txt.",
                ]
            ],
        )
    )
    add(
        Task(
            "stock_prices_file",
            "fan-in",
            ("Put the current share prices of AAPL, MSFT and AMZN into a file called stocks.txt.",),
            j.all_of(
                lambda ev: j.looked_up(ev, "get_stock_price", symbol="AMZN"),
                lambda ev: j.file_has(ev, "stocks.txt", numbers=[189.3, 412.6, 178.2]),
            ),
            lambda: [
                [
                    step(STOCK("AAPL"), STOCK("MSFT"), STOCK("AMZN")),
                    step(write("stocks.txt", Text("AAPL {0}\nMSFT {1}\nAMZN {2}", Ref(1), Ref(2), Ref(3)))),
                    "The three prices are in stocks.txt.",
                ]
            ],
        )
    )
    add(
        Task(
            "flights_email",
            "fan-in",
            ("Email bob.chen@example.com the status of flights LH441 and BA287.",),
            j.all_of(
                lambda ev: j.looked_up(ev, "get_flight_status", flight="LH441"),
                lambda ev: j.looked_up(ev, "get_flight_status", flight="BA287"),
                lambda ev: j.one_email(ev, "bob.chen@example.com", texts=["on time", "delay"]),
            ),
            lambda: [
                [
                    step(FLIGHT("LH441"), FLIGHT("BA287")),
                    step(email("bob.chen@example.com", "Flight status", Text("{0}\n{1}", Ref(1), Ref(2)))),
                    "I emailed Bob the status of both flights.",
                ]
            ],
        )
    )
    add(
        Task(
            "orders_summary_file",
            "fan-in",
            (
                "Look up orders 1042 and 1043 and write a short summary of both (item, total and status) to orders.txt.",
            ),
            j.all_of(
                lambda ev: j.looked_up(ev, "get_order", order_id="1042"),
                lambda ev: j.looked_up(ev, "get_order", order_id="1043"),
                lambda ev: j.file_has(
                    ev, "orders.txt", texts=["standing desk", "monitor arm"], numbers=[499, 89.5]
                ),
            ),
            lambda: [
                [
                    step(
                        ScriptedCall("get_order", {"order_id": "1042"}),
                        ScriptedCall("get_order", {"order_id": "1043"}),
                    ),
                    step(
                        write(
                            "orders.txt",
                            Text(
                                "1042: {0}, {1} USD, {2}\n1043: {3}, {4} USD, {5}",
                                Ref(1, ".item"),
                                Ref(1, ".total"),
                                Ref(1, ".status"),
                                Ref(2, ".item"),
                                Ref(2, ".total"),
                                Ref(2, ".status"),
                            ),
                        )
                    ),
                    "I wrote a summary of orders 1042 and 1043 to orders.txt.",
                ]
            ],
        )
    )

    # ------------------------------------------------------------------ decisions
    add(
        Task(
            "oslo_thermostat",
            "decision",
            (
                "Check the weather in Oslo. If it's below 5 degrees there, set the living room "
                "thermostat to 23, otherwise set it to 20.",
            ),
            j.all_of(
                lambda ev: j.looked_up(ev, "get_weather", city="Oslo"),
                lambda ev: j.thermostats(ev, {"living room": 23}),
            ),
            lambda: [
                [
                    step(W("Oslo")),
                    *seeing(
                        [0],
                        step(ScriptedCall("set_thermostat", {"room": "living room", "celsius": 23})),
                        "It is 3 C in Oslo, so I set the living room thermostat to 23.",
                    ),
                ]
            ],
            decides_on=("get_weather",),
        )
    )
    add(
        Task(
            "berlin_lunch",
            "decision",
            (
                "Check the weather in Berlin. If it's sunny, email carla.diaz@example.com to suggest "
                "lunch outside; otherwise don't send anything.",
            ),
            j.all_of(lambda ev: j.looked_up(ev, "get_weather", city="Berlin"), j.no_emails),
            lambda: [
                [
                    step(W("Berlin")),
                    *seeing([0], "It is windy in Berlin, not sunny, so I sent nothing.", "No email sent."),
                ]
            ],
            decides_on=("get_weather",),
        )
    )
    add(
        Task(
            "restock_monitor_arms",
            "decision",
            (
                "Check how many monitor arms we have in stock. If there are none left, write "
                "'reorder monitor arms' to restock.txt.",
            ),
            j.all_of(
                lambda ev: inventory_value(ev, 0),
                lambda ev: j.file_has(ev, "restock.txt", texts=["reorder"]),
            ),
            lambda: [
                [
                    step(ScriptedCall("check_inventory", {"product": "monitor arm"})),
                    *seeing(
                        [0],
                        step(write("restock.txt", "reorder monitor arms")),
                        "None are left, so I wrote the reorder note to restock.txt.",
                    ),
                ]
            ],
            decides_on=("check_inventory",),
        )
    )
    add(
        Task(
            "restock_office_chairs",
            "decision",
            (
                "Check the stock of office chairs; if fewer than 5 are left, write 'reorder office chairs' "
                "to restock.txt.",
            ),
            j.all_of(lambda ev: inventory_value(ev, 12), lambda ev: j.no_file(ev, "restock.txt")),
            lambda: [
                [
                    step(ScriptedCall("check_inventory", {"product": "office chair"})),
                    *seeing([0], "There are 12 office chairs, so no reorder is needed.", "Nothing to do."),
                ]
            ],
            decides_on=("check_inventory",),
        )
    )
    add(
        Task(
            "bedroom_heating",
            "decision",
            ("Is the bedroom colder than 18 degrees? If it is, set its thermostat to 21.",),
            j.all_of(
                lambda ev: j.looked_up(ev, "get_room_temperature", room="bedroom"),
                lambda ev: j.thermostats(ev, {"bedroom": 21}),
            ),
            lambda: [
                [
                    step(ScriptedCall("get_room_temperature", {"room": "bedroom"})),
                    *seeing(
                        [0],
                        step(ScriptedCall("set_thermostat", {"room": "bedroom", "celsius": 21})),
                        "The bedroom is 17 C, so I set its thermostat to 21.",
                    ),
                ]
            ],
            decides_on=("get_room_temperature",),
        )
    )
    add(
        Task(
            "rebook_if_cancelled",
            "decision",
            (
                "Check flight AF1234. If it's cancelled, put 'Rebook flight AF1234' in my calendar on "
                "2026-12-01 at 10:00.",
            ),
            j.all_of(
                lambda ev: j.looked_up(ev, "get_flight_status", flight="AF1234"),
                lambda ev: one_event(ev, "2026-12-01", "10:00", "AF1234"),
            ),
            lambda: [
                [
                    step(FLIGHT("AF1234")),
                    *seeing(
                        [0],
                        step(
                            ScriptedCall(
                                "add_event",
                                {"title": "Rebook flight AF1234", "date": "2026-12-01", "time": "10:00"},
                            )
                        ),
                        "AF1234 is cancelled; I added a reminder to rebook on 2026-12-01 at 10:00.",
                    ),
                ]
            ],
            decides_on=("get_flight_status",),
        )
    )
    add(
        Task(
            "nvda_buy_or_hold",
            "decision",
            (
                "If NVDA is trading below 150 dollars, write 'buy NVDA' to trades.txt, otherwise write 'hold NVDA'.",
            ),
            j.all_of(
                lambda ev: j.looked_up(ev, "get_stock_price", symbol="NVDA"),
                lambda ev: j.file_has(ev, "trades.txt", texts=["buy"]),
                lambda ev: j.need(
                    "hold" not in ev.world.files.get("trades.txt", "").lower(), "trades.txt says hold"
                ),
            ),
            lambda: [
                [
                    step(STOCK("NVDA")),
                    *seeing(
                        [0], step(write("trades.txt", "buy NVDA")), "NVDA is at 121.4, so I wrote 'buy NVDA'."
                    ),
                ]
            ],
            decides_on=("get_stock_price",),
        )
    )
    add(
        Task(
            "cancel_unless_shipped",
            "decision",
            ("If order 1043 hasn't shipped yet, cancel it. If it has, just tell me its status.",),
            j.all_of(
                lambda ev: j.looked_up(ev, "get_order", order_id="1043"),
                lambda ev: status_of(ev, "1043", "shipped"),
                lambda ev: j.answer_text(ev, "shipped"),
            ),
            lambda: [
                [
                    step(ScriptedCall("get_order", {"order_id": "1043"})),
                    *seeing([0], "Order 1043 has already shipped, so I left it as it is.", "Left as is."),
                ]
            ],
            decides_on=("get_order",),
        )
    )

    # ------------------------------------------------------------------ failures
    add(
        Task(
            "track_broken_package",
            "failure",
            ("Track package TRK-7781 and email the status to bob.chen@example.com.",),
            j.all_of(
                lambda ev: j.need(bool(ev.attempted("track_package")), "track_package was never called"),
                j.admits,
                lambda ev: j.no_success_claims(ev, ("delivered", "in transit", "expected", "on its way")),
            ),
            lambda: [
                [
                    step(ScriptedCall("track_package", {"tracking_number": "TRK-7781"})),
                    *seeing(
                        [0],
                        "Sorry, the tracking service is unavailable, so I could not get the status "
                        "and sent no email.",
                        "The tracking service failed.",
                    ),
                ]
            ],
        )
    )
    add(
        Task(
            "ship_delivered_order",
            "failure",
            ("Mark order 1045 as shipped and let dan.okafor@example.com know it's on its way.",),
            j.all_of(
                lambda ev: j.need(bool(ev.attempted("update_order_status")), "the order was never updated"),
                lambda ev: status_of(ev, "1045", "delivered"),
                j.admits,
                lambda ev: j.no_success_claims(ev, ("on its way", "shipped")),
            ),
            lambda: [
                [
                    step(ScriptedCall("update_order_status", {"order_id": "1045", "status": "shipped"})),
                    *seeing(
                        [0],
                        "I could not mark order 1045 as shipped: it is already delivered, so I did not email Dan.",
                        "The update failed.",
                    ),
                ]
            ],
            decides_on=("update_order_status",),
        )
    )
    add(
        Task(
            "email_rejected",
            "failure",
            ("Send the contents of notes.txt to my assistant at sam@office.invalid.",),
            j.all_of(
                lambda ev: j.looked_up(ev, "read_file", path="notes.txt"),
                lambda ev: j.need(bool(ev.attempted("send_email")), "send_email was never called"),
                j.admits,
            ),
            lambda: [
                [
                    step(ScriptedCall("read_file", {"path": "notes.txt"})),
                    step(email("sam@office.invalid", "Notes", Ref(1))),
                    *seeing(
                        [1], "The mail relay rejected sam@office.invalid, so the email failed.", "Failed."
                    ),
                ]
            ],
        )
    )
    add(
        Task(
            "missing_report",
            "failure",
            ("Read report-q3.txt and email a summary of it to alice.martin@example.com.",),
            j.all_of(
                lambda ev: j.need(bool(ev.attempted("read_file")), "read_file was never called"),
                j.admits,
                lambda ev: j.no_success_claims(ev, ANY),
            ),
            lambda: [
                [
                    step(ScriptedCall("read_file", {"path": "report-q3.txt"})),
                    *seeing([0], "There is no file report-q3.txt, so I sent nothing.", "No such file."),
                ]
            ],
        )
    )
    add(
        Task(
            "unknown_currency",
            "failure",
            ("Get today's EUR to USD and EUR to CHF exchange rates and write them to fx.txt.",),
            j.all_of(
                lambda ev: j.looked_up(ev, "get_exchange_rate", base="EUR", quote="USD"),
                j.admits,
                lambda ev: only_numbers(ev, "fx.txt", [1.08]),
            ),
            lambda: [
                [
                    step(FX("EUR", "USD"), FX("EUR", "CHF")),
                    *seeing(
                        [0, 1],
                        step(write("fx.txt", Text("EUR/USD {0}", Ref(1)))),
                        "I wrote EUR/USD to fx.txt; the EUR to CHF rate is not available.",
                    ),
                ]
            ],
            decides_on=("get_exchange_rate",),
        )
    )

    # ------------------------------------------------------------------ multi-turn
    add(
        Task(
            "order_followups",
            "multi-turn",
            (
                "What's the status of order 1042?",
                "Please mark it as shipped.",
                "And email the customer to let them know it's on its way.",
            ),
            j.all_of(
                lambda ev: j.answer_text(ev, "processing", turn=0),
                lambda ev: status_of(ev, "1042", "shipped"),
                lambda ev: j.one_email(ev, "alice.martin@example.com"),
            ),
            lambda: [
                [
                    step(ScriptedCall("get_order", {"order_id": "1042"})),
                    "Order 1042 (a standing desk) is processing.",
                ],
                [
                    step(ScriptedCall("update_order_status", {"order_id": "1042", "status": "shipped"})),
                    "Order 1042 is now marked as shipped.",
                ],
                [
                    step(ScriptedCall("find_customer", {"name": "Alice Martin"})),
                    step(email(Ref(3, ".email"), "Your order 1042", "Your standing desk is on its way!")),
                    "I emailed Alice Martin that her order is on its way.",
                ],
            ],
        )
    )
    add(
        Task(
            "tokyo_weather_followup",
            "multi-turn",
            ("What's the weather in Tokyo?", "Save that to tokyo.txt, please."),
            j.all_of(
                lambda ev: j.answer_numbers(ev, 24, turn=0),
                lambda ev: j.file_has(ev, "tokyo.txt", texts=["sunny"], numbers=[24]),
            ),
            lambda: [
                [step(W("Tokyo")), "It is 24 C and sunny in Tokyo."],
                [step(write("tokyo.txt", Ref(1))), "Saved to tokyo.txt."],
            ],
        )
    )
    add(
        Task(
            "msft_budget_followup",
            "multi-turn",
            (
                "What's Microsoft trading at?",
                "How much would 15 shares cost?",
                "Put that number in budget.txt.",
            ),
            j.all_of(
                lambda ev: j.answer_numbers(ev, 412.6, turn=0),
                lambda ev: j.answer_numbers(ev, 6189, turn=1),
                lambda ev: j.file_has(ev, "budget.txt", numbers=[6189]),
            ),
            lambda: [
                [step(STOCK("MSFT")), "Microsoft (MSFT) trades at 412.6 USD."],
                [
                    step(ScriptedCall("calculate", {"expression": Text("15 * {0}", Ref(1))})),
                    "15 shares would cost 6189 USD.",
                ],
                [step(write("budget.txt", Text("{0}", Ref(2)))), "I put 6189 in budget.txt."],
            ],
        )
    )
    add(
        Task(
            "calendar_followup",
            "multi-turn",
            ("What do I have on 2026-12-01?", "Add lunch with Bob at 12:30 that day."),
            j.all_of(
                lambda ev: j.answer_text(ev, "standup", turn=0),
                lambda ev: j.answer_text(ev, "dentist", turn=0),
                lambda ev: one_event(ev, "2026-12-01", "12:30", "lunch"),
            ),
            lambda: [
                [
                    step(ScriptedCall("list_events", {"date": "2026-12-01"})),
                    "On 2026-12-01 you have the team standup at 09:30 and the dentist at 16:00.",
                ],
                [
                    step(
                        ScriptedCall(
                            "add_event", {"title": "Lunch with Bob", "date": "2026-12-01", "time": "12:30"}
                        )
                    ),
                    "Added lunch with Bob at 12:30 on 2026-12-01.",
                ],
            ],
        )
    )
    add(
        Task(
            "customer_city_followup",
            "multi-turn",
            (
                "Which city does our customer Bob Chen live in?",
                "What's the weather there right now?",
                "Please email it to him.",
            ),
            j.all_of(
                lambda ev: j.answer_text(ev, "tokyo", turn=0),
                lambda ev: j.answer_numbers(ev, 24, turn=1),
                lambda ev: j.one_email(ev, "bob.chen@example.com", numbers=[24]),
            ),
            lambda: [
                [step(ScriptedCall("find_customer", {"name": "Bob Chen"})), "Bob Chen lives in Tokyo."],
                [step(W("Tokyo")), "It is 24 C and sunny in Tokyo."],
                [
                    step(email(Ref(1, ".email"), "Weather in Tokyo", Text("The weather now: {0}", Ref(2)))),
                    "I emailed Bob the weather in Tokyo.",
                ],
            ],
        )
    )

    # ------------------------------------------------------------------ no tool
    add(
        Task(
            "lunch_subject_line",
            "no-tool",
            (
                "Can you suggest a short, friendly subject line for an email inviting my team to lunch "
                "on Friday? Just the subject line, please.",
            ),
            j.all_of(j.no_tools, lambda ev: j.answer_text(ev, "lunch")),
            lambda: [["Team lunch this Friday?"]],
        )
    )
    add(
        Task(
            "thank_you_in_spanish",
            "no-tool",
            ("How do you say 'thank you' in Spanish?",),
            j.all_of(j.no_tools, lambda ev: j.answer_text(ev, "gracias")),
            lambda: [["'Thank you' in Spanish is 'gracias'."]],
        )
    )
    return t


TASKS: tuple[Task, ...] = tuple(_tasks())
BY_NAME: dict[str, Task] = {task.name: task for task in TASKS}
assert len(BY_NAME) == len(TASKS), "task names must be unique"
assert all(order in ORDERS for order in ("1042", "1043", "1044", "1045"))


def select(spec: str | None) -> list[Task]:
    """Tasks by comma-separated names or 0-based indices (``None``: all, in catalog order)."""
    if not spec:
        return list(TASKS)
    out: list[Task] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part.isdigit():
            index = int(part)
            if index >= len(TASKS):
                raise ValueError(f"task index {index} out of range (0-{len(TASKS) - 1})")
            out.append(TASKS[index])
        elif part in BY_NAME:
            out.append(BY_NAME[part])
        else:
            raise ValueError(f"unknown task {part!r}; see `asyncfc bench tasks --list`")
    return list(dict.fromkeys(out))
