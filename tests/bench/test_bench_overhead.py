"""`asyncfc bench overhead --server`: JSON keys on a tiny configuration (no timing asserted)."""

from __future__ import annotations

import asyncio

from asyncfc.cli import build_parser
from asyncfc_bench.overhead import BARE, measure_server


def test_server_overhead_reports_cpu_per_call_of_modes_and_bare_loop() -> None:
    data = asyncio.run(measure_server({"tiny": (2, 3, 2)}, systems=("async", "sync-nostream"), repeats=1))
    w = data["workloads"]["tiny"]
    assert (w["sessions"], w["calls_per_session"], w["calls_per_response"]) == (2, 3, 2)
    assert set(w["modes"]) == {"async", "sync-nostream"}
    assert set(w["baseline"]) == set(BARE)
    for row in [*w["modes"].values(), *w["baseline"].values()]:
        assert row["cpu_us_per_call"] > 0 and len(row["cpu_us_per_call_runs"]) == 1
    assert w["modes"]["async"]["ratio_vs_bare"] > 0
    assert set(w["ratios"]) == {"async_vs_bare", "sync-nostream_vs_bare"}
    assert len(data["load_average"]) == 3


def test_cli_has_the_server_flag() -> None:
    args = build_parser().parse_args(["bench", "overhead", "--server", "--json", "--repeats", "2"])
    assert args.server and args.json and args.repeats == 2
