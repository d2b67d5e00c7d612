"""A real-model task suite: everyday assistant tasks of every shape, judged by final state.

``asyncfc bench tasks`` runs every task of :mod:`.catalog` in each mode on a real model
(default: the embedded local model) with realistic tool latency (:mod:`.world`), judges
each run by the tool state and call results it leaves (:mod:`.judge`), measures every
model step and call (:mod:`.measure`) and reports paired statistics (:mod:`.report`).
"""

from asyncfc_bench.tasks.catalog import BY_NAME, SHAPES, TASKS, Task, select
from asyncfc_bench.tasks.judge import Evidence, Verdict, judge
from asyncfc_bench.tasks.runner import Config, Run, run_suite, run_task
from asyncfc_bench.tasks.world import LATENCY_S, LOOKUPS, Latency, World

__all__ = [
    "BY_NAME",
    "LATENCY_S",
    "LOOKUPS",
    "SHAPES",
    "TASKS",
    "Config",
    "Evidence",
    "Latency",
    "Run",
    "Task",
    "Verdict",
    "World",
    "judge",
    "run_suite",
    "run_task",
    "select",
]
