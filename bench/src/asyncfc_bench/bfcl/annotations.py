"""Read/write sets for all 128 functions of the eight BFCL multi-turn backends.

The scheduler may run two calls concurrently only when their labels do not conflict, so
each function declares every piece of state it reads or writes, including hidden state:
the current directory, caches, seeded random generators (a call that draws a number
*writes* ``<class>/rng``: swapping two such calls changes their results), log-in state,
and process-wide settings. Labels were chosen by reading the backend source of
``bfcl-eval==2026.3.23``; ``tests/test_bfcl_annotations.py`` checks them against the
backends on every ground-truth call (attribute snapshots and attribute-read tracing).
Where unsure, a label is coarser.

State tree (label -> backend attributes, see :data:`LABEL_ATTRIBUTES`):

=========  ==================================================================
class      labels
=========  ==================================================================
fs         ``cwd`` (``_current_dir``), ``tree`` (``root``: every directory and
           file; paths are cwd-relative, so no finer label can be known up front)
math       ``mpmath`` (process-wide ``mpmath.mp.dps``, set by ``logarithm``),
           ``decimal`` (the thread's ``decimal`` context precision, set by
           ``square_root``); everything else is pure
message    ``users`` (user_map, user_count), ``session`` (current_user),
           ``inbox`` (inbox, message_count), ``rng`` (_random, generated_ids)
twitter    ``auth`` (username, password, authenticated), ``tweets`` (tweets,
           tweet_counter), ``comments``, ``retweets``, ``following``
ticket     ``session`` (current_user), ``tickets`` (ticket_queue, ticket_counter)
trading    ``auth``, ``market`` (stocks, market_status: never written),
           ``orders`` (orders, order_counter), ``account`` (account_info,
           transaction_history), ``watchlist``, ``rng`` (transaction timestamps)
travel     ``auth`` (token and user name), ``cards`` (credit_card_list),
           ``bookings`` (booking_record), ``budget`` (budget_limit),
           ``fare_cache`` (_flight_cost_lookup: ``get_flight_cost`` fills it and
           ``book_flight`` reads it), ``rng`` (ids, card balances, tokens)
vehicle    one label per ``displayCarStatus`` option, so that call reads
           ``vehicle/{option}``: ``engine``, ``fuel``, ``battery``, ``doors``,
           ``climate``, ``headlights``, ``parkingBrake``, ``brakePedal``; and
           ``cruise``, ``navigation``, ``tires``, ``rng`` (speed, temperature),
           ``weather`` (process-wide ``long_context.LONG_WEATHER_EXTENSION``,
           rewritten by ``get_outside_temperature_from_google`` in long context)
=========  ==================================================================

Process-wide state (:data:`PROCESS_LABELS`) is shared by every session in the process,
so labels alone cannot order it across sessions; :mod:`.backends` also holds one lock
around the calls that write it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ANNOTATIONS",
    "Access",
    "CLASS_ANNOTATIONS",
    "CLASS_LABEL",
    "CONSTANT_ATTRIBUTES",
    "FILE_SYSTEM",
    "LABEL_ATTRIBUTES",
    "MATH",
    "MESSAGE",
    "PROCESS_LABELS",
    "PURE",
    "TICKET",
    "TRADING",
    "TRAVEL",
    "TWITTER",
    "VEHICLE",
    "process_wide",
    "rw",
]


@dataclass(frozen=True)
class Access:
    """The labels one function reads and writes; both empty means pure."""

    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()

    @property
    def pure(self) -> bool:
        return not self.reads and not self.writes


def rw(reads: str = "", writes: str = "") -> Access:
    """Shorthand for the tables below: space-separated labels."""
    return Access(tuple(reads.split()), tuple(writes.split()))


PURE = Access()

# fmt: off
FILE_SYSTEM: dict[str, Access] = {
    "pwd":   rw("fs/cwd fs/tree"),  # names and parents never change, but coarser is safe
    "ls":    rw("fs/cwd fs/tree"),
    "cd":    rw("fs/tree", "fs/cwd"),
    "mkdir": rw("fs/cwd", "fs/tree"),
    "touch": rw("fs/cwd", "fs/tree"),
    "echo":  rw("fs/cwd", "fs/tree"),
    "cat":   rw("fs/cwd fs/tree"),
    "find":  rw("fs/cwd fs/tree"),
    "wc":    rw("fs/cwd fs/tree"),
    "sort":  rw("fs/cwd fs/tree"),
    "grep":  rw("fs/cwd fs/tree"),
    "du":    rw("fs/cwd fs/tree"),
    "tail":  rw("fs/cwd fs/tree"),
    "diff":  rw("fs/cwd fs/tree"),
    "mv":    rw("fs/cwd", "fs/tree"),
    "rm":    rw("fs/cwd", "fs/tree"),
    "rmdir": rw("fs/cwd", "fs/tree"),
    "cp":    rw("fs/cwd", "fs/tree"),
}

MATH: dict[str, Access] = {
    "logarithm":              rw(writes="math/mpmath"),
    "square_root":            rw(writes="math/decimal"),
    "mean":                   PURE,
    "standard_deviation":     PURE,
    "si_unit_conversion":     PURE,
    "imperial_si_conversion": PURE,
    "add":                    PURE,
    "subtract":               PURE,
    "multiply":               PURE,
    "divide":                 PURE,
    "power":                  PURE,
    "absolute_value":         PURE,
    "round_number":           PURE,
    "percentage":             PURE,
    "min_value":              PURE,
    "max_value":              PURE,
    "sum_values":             PURE,
}

MESSAGE: dict[str, Access] = {
    "list_users":               rw("message/users"),
    "get_user_id":              rw("message/users"),
    "message_login":            rw("message/users", "message/session"),
    "message_get_login_status": rw("message/session"),
    "send_message":             rw("message/session message/users", "message/inbox message/rng"),
    "delete_message":           rw("message/session", "message/inbox"),
    "view_messages_sent":       rw("message/session message/inbox"),
    "add_contact":              rw(writes="message/users"),
    "search_messages":          rw("message/session message/inbox"),
    "get_message_stats":        rw("message/session message/inbox"),
}

TWITTER: dict[str, Access] = {
    "authenticate_twitter":    rw(writes="twitter/auth"),
    "posting_get_login_status": rw("twitter/auth"),
    "post_tweet":              rw("twitter/auth", "twitter/tweets"),
    "retweet":                 rw("twitter/auth twitter/tweets", "twitter/retweets"),
    "comment":                 rw("twitter/auth twitter/tweets", "twitter/comments"),
    "mention":                 rw(writes="twitter/tweets"),
    "follow_user":             rw("twitter/auth", "twitter/following"),
    "list_all_following":      rw("twitter/auth twitter/following"),
    "unfollow_user":           rw("twitter/auth", "twitter/following"),
    "get_tweet":               rw("twitter/tweets"),
    "get_user_tweets":         rw("twitter/tweets"),
    "search_tweets":           rw("twitter/tweets"),
    "get_tweet_comments":      rw("twitter/tweets twitter/comments"),
    "get_user_stats":          rw("twitter/auth twitter/tweets twitter/following twitter/retweets"),
}

TICKET: dict[str, Access] = {
    "create_ticket":           rw("ticket/session", "ticket/tickets"),
    "get_ticket":              rw("ticket/tickets"),
    "close_ticket":            rw(writes="ticket/tickets"),
    "resolve_ticket":          rw(writes="ticket/tickets"),
    "edit_ticket":             rw(writes="ticket/tickets"),
    "ticket_login":            rw(writes="ticket/session"),
    "ticket_get_login_status": rw("ticket/session"),
    "logout":                  rw(writes="ticket/session"),
    "get_user_tickets":        rw("ticket/session ticket/tickets"),
}

TRADING: dict[str, Access] = {
    "get_current_time":            PURE,  # a module constant
    "get_symbol_by_name":          PURE,
    "get_stock_info":              rw("trading/market"),
    "get_order_details":           rw("trading/orders"),
    "cancel_order":                rw(writes="trading/orders"),
    "place_order":                 rw("trading/auth trading/market trading/account", "trading/orders"),
    "withdraw_funds":              rw("trading/auth trading/market", "trading/account trading/rng"),
    "get_account_info":            rw("trading/auth trading/account"),
    "trading_login":               rw(writes="trading/auth"),
    "trading_get_login_status":    rw("trading/auth"),
    "trading_logout":              rw(writes="trading/auth"),
    "fund_account":                rw("trading/auth", "trading/account trading/rng"),
    "remove_stock_from_watchlist": rw("trading/auth", "trading/watchlist"),
    "get_watchlist":               rw("trading/auth trading/watchlist"),
    "get_order_history":           rw("trading/auth trading/orders"),
    "get_transaction_history":     rw("trading/auth trading/account"),
    "get_available_stocks":        PURE,  # extends a fresh local dict, not the instance
    "filter_stocks_by_price":      rw("trading/market"),
    "add_to_watchlist":            rw("trading/market", "trading/watchlist"),
    "notify_price_change":         rw("trading/market"),
}

TRAVEL: dict[str, Access] = {
    "authenticate_travel":         rw(writes="travel/auth travel/rng"),
    "travel_get_login_status":     rw("travel/auth"),
    "get_budget_fiscal_year":      PURE,
    "register_credit_card":        rw("travel/auth", "travel/cards travel/rng"),
    "get_flight_cost":             rw(writes="travel/fare_cache"),
    "get_credit_card_balance":     rw("travel/auth travel/cards"),
    "book_flight":                 rw("travel/auth travel/budget",
                                      "travel/cards travel/bookings travel/fare_cache travel/rng"),
    "retrieve_invoice":            rw("travel/auth travel/bookings"),
    "get_booking_history":         rw("travel/auth travel/bookings"),
    "list_all_airports":           PURE,
    "cancel_booking":              rw("travel/auth", "travel/bookings travel/cards"),
    "compute_exchange_rate":       PURE,
    "verify_traveler_information": rw("travel/auth"),  # and today's date
    "set_budget_limit":            rw("travel/auth", "travel/budget"),
    "get_nearest_airport_by_city": PURE,
    "purchase_insurance":          rw("travel/auth travel/budget travel/bookings", "travel/cards travel/rng"),
    "contact_customer_support":    rw("travel/bookings"),
    "get_all_credit_cards":        rw("travel/cards"),
}

VEHICLE: dict[str, Access] = {
    "startEngine":                 rw("vehicle/doors vehicle/brakePedal vehicle/fuel vehicle/battery",
                                      "vehicle/engine"),
    "fillFuelTank":                rw(writes="vehicle/fuel"),
    "lockDoors":                   rw(writes="vehicle/doors"),
    "adjustClimateControl":        rw(writes="vehicle/climate"),
    "get_outside_temperature_from_google": rw(writes="vehicle/rng vehicle/weather"),
    "get_outside_temperature_from_weather_com": PURE,
    "setHeadlights":               rw(writes="vehicle/headlights"),
    "displayCarStatus":            rw("vehicle/{option}"),  # labels are named after the options
    "activateParkingBrake":        rw(writes="vehicle/parkingBrake"),
    "pressBrakePedal":             rw(writes="vehicle/brakePedal"),
    "releaseBrakePedal":           rw(writes="vehicle/brakePedal"),
    "setCruiseControl":            rw("vehicle/engine", "vehicle/cruise"),
    "get_current_speed":           rw(writes="vehicle/rng"),
    "display_log":                 PURE,
    "estimate_drive_feasibility_by_mileage": rw("vehicle/fuel"),
    "liter_to_gallon":             PURE,
    "gallon_to_liter":             PURE,
    "estimate_distance":           PURE,
    "get_zipcode_based_on_city":   PURE,
    "set_navigation":              rw(writes="vehicle/navigation"),
    "check_tire_pressure":         rw("vehicle/tires"),
    "find_nearest_tire_shop":      PURE,
}
# fmt: on

CLASS_ANNOTATIONS: dict[str, dict[str, Access]] = {
    "GorillaFileSystem": FILE_SYSTEM,
    "MathAPI": MATH,
    "MessageAPI": MESSAGE,
    "TwitterAPI": TWITTER,
    "TicketAPI": TICKET,
    "TradingBot": TRADING,
    "TravelAPI": TRAVEL,
    "VehicleControlAPI": VEHICLE,
}
"""Class name -> function name -> access."""

ANNOTATIONS: dict[str, Access] = {
    name: access for table in CLASS_ANNOTATIONS.values() for name, access in table.items()
}
"""Function name -> access (names are unique across the eight classes)."""

CLASS_LABEL: dict[str, str] = {
    "GorillaFileSystem": "fs",
    "MathAPI": "math",
    "MessageAPI": "message",
    "TwitterAPI": "twitter",
    "TicketAPI": "ticket",
    "TradingBot": "trading",
    "TravelAPI": "travel",
    "VehicleControlAPI": "vehicle",
}
"""Class name -> the top label of its state tree."""

# fmt: off
LABEL_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "fs/cwd":            ("_current_dir",),
    "fs/tree":           ("root",),
    "message/users":     ("user_map", "user_count"),
    "message/session":   ("current_user",),
    "message/inbox":     ("inbox", "message_count"),
    "message/rng":       ("_random", "generated_ids"),
    "twitter/auth":      ("username", "password", "authenticated"),
    "twitter/tweets":    ("tweets", "tweet_counter"),
    "twitter/comments":  ("comments",),
    "twitter/retweets":  ("retweets",),
    "twitter/following": ("following_list",),
    "ticket/session":    ("current_user",),
    "ticket/tickets":    ("ticket_queue", "ticket_counter"),
    "trading/auth":      ("authenticated",),
    "trading/market":    ("stocks", "market_status"),
    "trading/orders":    ("orders", "order_counter"),
    "trading/account":   ("account_info", "transaction_history"),
    "trading/watchlist": ("watch_list",),
    "trading/rng":       ("_random",),
    "travel/auth":       ("access_token", "token_type", "token_expires_in", "token_scope",
                          "user_first_name", "user_last_name"),
    "travel/cards":      ("credit_card_list",),
    "travel/bookings":   ("booking_record",),
    "travel/budget":     ("budget_limit",),
    "travel/fare_cache": ("_flight_cost_lookup",),
    "travel/rng":        ("_random",),
    "vehicle/engine":    ("engine_state",),
    "vehicle/fuel":      ("fuelLevel",),
    "vehicle/battery":   ("batteryVoltage",),
    "vehicle/doors":     ("doorStatus", "remainingUnlockedDoors"),
    "vehicle/climate":   ("acTemperature", "fanSpeed", "acMode", "humidityLevel"),
    "vehicle/headlights": ("headLightStatus",),
    "vehicle/parkingBrake": ("parkingBrakeStatus", "_parkingBrakeForce", "_slopeAngle"),
    "vehicle/brakePedal": ("brakePedalStatus", "_brakePedalForce"),
    "vehicle/cruise":    ("cruiseStatus", "distanceToNextVehicle"),
    "vehicle/navigation": ("destination",),
    "vehicle/tires":     ("frontLeftTirePressure", "frontRightTirePressure",
                          "rearLeftTirePressure", "rearRightTirePressure"),
    "vehicle/rng":       ("_random",),
}
"""Instance state: label -> the attributes of that class's instance it covers."""
# fmt: on

CONSTANT_ATTRIBUTES: tuple[str, ...] = ("_api_description", "long_context")
"""Instance attributes that no call changes (set once when a scenario is loaded)."""

PROCESS_LABELS: dict[str, str] = {
    "math/mpmath": "mpmath.mp.dps (process-wide)",
    "math/decimal": "decimal.getcontext().prec (per thread)",
    "vehicle/weather": "long_context.LONG_WEATHER_EXTENSION (module dict)",
}
"""Labels of state outside the instances, shared by every session in the process."""


def process_wide(name: str) -> bool:
    """Does this function write state shared across sessions (so it needs the process lock)?"""
    access = ANNOTATIONS.get(name)
    return access is not None and any(label in PROCESS_LABELS for label in access.writes)
