"""Every fenced code block of README.md and docs/**/*.md is run or checked: one test per block.

The rules (docs/contributing.md says the same):

* Every block names its language. ``text`` blocks (output, trees, placeholders) are the only
  ones skipped; a language without a rule here fails its test.
* ``python``: run as a script in a fresh ``sys.executable`` subprocess, from the repository
  root, with a timeout; it must exit 0, so it asserts its own outcome. When the next block
  is ```` ```text title="output" ````, stdout must equal it.
* An HTML comment on the line right before the fence, ``<!-- test: ... -->``, adds:
  ``llm`` (needs the embedded model: marked ``llm``, so it runs in ``make test-llm``, which
  starts the server); ``sim-server NAME`` (a :class:`~asyncfc.testing.SimServer` plays
  ``SIMULATIONS[NAME]``, ``ASYNCFC_BASE_URL`` points at it, and its check then runs on
  what the server received); ``check=NAME`` (``CHECKS[NAME]`` runs on the block's globals
  after it ends); ``modes=a,b`` (one run per mode, ``mode="async"`` replaced by each). A
  block with both ``sim-server NAME`` and ``llm`` gets both tests, each in every mode: one
  against the SimServer in the default suite, one against the embedded model (``llm``,
  ``ASYNCFC_BASE_URL`` pointing at it, id ending ``:llm``); ``check=`` runs after both.
* ``bash`` and ``console`` (``$ `` prompts; comments dropped, ``\\`` continuations joined),
  per command line: ``asyncfc ARGS`` runs when it is fast and needs no model or network
  (``--version``, ``--help``, ``bench synthetic``, ``demo --no-llm``) and must exit 0;
  otherwise ``asyncfc.cli.build_parser().parse_args(ARGS)`` must accept it, so a renamed
  flag fails. ``make T...``: each T is a Makefile target. ``pip install R...``: each R is
  ``asyncfc`` or ``asyncfc-bench`` with extras that distribution declares (``-e PATH``: a
  folder with a pyproject.toml). ``python FILE [ARGS]``: a file under ``examples/`` runs and
  must exit 0; any other file (a tool that writes files) must exist and compile. Any other
  command fails.
* ``toml``: an MCP proxy annotations file, checked by ``parse_annotations``.
* ``json``: must parse; an ``mcpServers`` entry whose command is ``asyncfc`` has its
  arguments checked by the CLI's parser.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from asyncfc.testing import Ref, ScriptedCall, SimServer, Turn

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
TIMEOUT_S = 180
"""Per block, in the default suite; an llm block gets LLM_TIMEOUT_S (the first one may build the model)."""
LLM_TIMEOUT_S = 1500

FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}(?=[^`]*$)|~{3,})(?P<info>.*)$")
"""An opening or closing fence (as in CommonMark, a backtick fence's info string has no backtick)."""
MARKER = re.compile(r"^\s*<!--\s*test:\s*(?P<words>.*?)\s*-->\s*$")


@dataclass
class Block:
    path: Path
    line: int
    """1-based line of the opening fence."""
    lang: str
    attrs: str
    code: str
    end: int
    """0-based index of the closing fence's line."""
    marker: list[str] = field(default_factory=list)
    output: str | None = None
    """The ```text title="output"``` block that follows, if any."""

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def option(self, name: str) -> str | None:
        for word in self.marker:
            if word.startswith(f"{name}="):
                return word.split("=", 1)[1]
        return None


def parse_blocks(path: Path) -> list[Block]:
    """The fenced blocks of one markdown file, with their test markers and expected output."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m["indent"], m["fence"], m["info"].strip()
        lang, _, attrs = info.partition(" ")
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            close = FENCE.match(lines[j])
            if (
                close
                and close["fence"][0] == fence[0]
                and len(close["fence"]) >= len(fence)
                and not close["info"].strip()
            ):
                break
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        else:
            raise AssertionError(f"{path.relative_to(ROOT)}:{i + 1}: code block is never closed")
        marker = MARKER.match(lines[i - 1]) if i > 0 else None
        words = marker["words"].split() if marker else []
        blocks.append(Block(path, i + 1, lang, attrs.strip(), "\n".join(body) + "\n", j, words))
        i = j + 1
    for before, after in zip(blocks, blocks[1:], strict=False):
        follows = all(not line.strip() for line in lines[before.end + 1 : after.line - 1])
        if before.lang == "python" and after.lang == "text" and 'title="output"' in after.attrs and follows:
            before.output = after.code
    return blocks


def collect() -> Iterator[Any]:
    llm_marks = [pytest.mark.llm, pytest.mark.timeout(LLM_TIMEOUT_S + 60)]
    marks = [pytest.mark.timeout(TIMEOUT_S + 60)]
    for path in SOURCES:
        for block in parse_blocks(path):
            if block.lang == "text":
                continue
            modes = (block.option("modes") or "").split(",") if block.option("modes") else [None]
            both = "llm" in block.marker and "sim-server" in block.marker
            for mode in modes:
                ident = block.where + (f":{mode}" if mode else "")
                if both:  # the SimServer in the default suite, and the embedded model
                    yield pytest.param(block, mode, False, id=ident, marks=marks)
                    yield pytest.param(block, mode, True, id=ident + ":llm", marks=llm_marks)
                elif "llm" in block.marker:
                    yield pytest.param(block, mode, True, id=ident, marks=llm_marks)
                else:
                    yield pytest.param(block, mode, False, id=ident, marks=marks)


# -- what the markers name ---------------------------------------------------------------


def _sent_calls(srv: SimServer) -> dict[str, dict[str, Any]]:
    """The arguments of every call the client reported back to the server, by tool name."""
    last = srv.model_requests[-1].body["messages"]
    calls = [tc["function"] for m in last if m.get("role") == "assistant" for tc in m.get("tool_calls") or []]
    return {c["name"]: json.loads(c["arguments"]) for c in calls}


@dataclass(frozen=True)
class Simulation:
    turns: list[Turn]
    check: Callable[[SimServer, str, str | None], None]
    """Runs on the server after the block ended, with the block's stdout and the mode it ran in
    (None: as written)."""


def _apple_ordered_with_future(srv: SimServer, stdout: str, mode: str | None) -> None:
    """The lookup's future passed on as the price (in sync mode the model saw its value)."""
    price = 2.5 if mode == "sync" else "fut_1"
    assert _sent_calls(srv)["place_order"] == {"item": "apple", "price": price}, (
        "the lookup's result was not passed on"
    )
    assert "Ordered an apple." in stdout


def _weather_passed_as_future(srv: SimServer, stdout: str, mode: str | None) -> None:
    assert _sent_calls(srv)["send_email"] == {"to": "bob@example.com", "body": "fut_1"}
    assert "Sent." in stdout


def _native_async_email(srv: SimServer, stdout: str, mode: str | None) -> None:
    """docs/protocols/openai-responses.md: tools declared async, the second request sent with
    the weather call still unanswered, and the email body naming that call by its call_id."""
    first, second = (r.body for r in srv.model_requests[:2])
    assert {t["name"]: t.get("async") for t in first["tools"]} == {
        "get_weather": True,
        "send_email": True,
        "await_future": None,
    }
    weather = next(i for i in second["input"] if i.get("type") == "function_call")
    assert not any(i.get("type") == "function_call_output" for i in second["input"]), "answered at once"
    calls = [i for r in srv.model_requests for i in r.body["input"] if i.get("name") == "send_email"]
    assert json.loads(calls[-1]["arguments"])["body"] == weather["call_id"]
    assert "sunny, 21 C in Paris" in stdout and "Sent." in stdout


SIMULATIONS: dict[str, Simulation] = {
    "order-an-apple": Simulation(
        [
            [ScriptedCall("get_price", {"item": "apple"})],
            [ScriptedCall("place_order", {"item": "apple", "price": Ref(1)})],
            "Ordered an apple.",
        ],
        _apple_ordered_with_future,
    ),
    "weather-email": Simulation(
        [
            [ScriptedCall("get_weather", {"city": "Paris"})],
            [ScriptedCall("send_email", {"to": "bob@example.com", "body": Ref(1)})],
            "Sent.",
        ],
        _weather_passed_as_future,
    ),
    "responses-native": Simulation(
        [
            [ScriptedCall("get_weather", {"city": "Paris"})],
            [ScriptedCall("send_email", {"to": "bob@example.com", "body": Ref(1)})],
            "Sent.",
        ],
        _native_async_email,
    ),
}
"""Scripts a ``sim-server NAME`` block's model endpoint plays, and what must hold afterwards."""


def _one_email_to_bob(state: dict[str, Any]) -> None:
    """The README's ten lines: exactly one email, to bob@example.com, with both lookups' values.

    The tool answers "sunny, 21 C in <city>" and a model may reword it ("Paris: sunny, 21 C"),
    so the body must name both cities and carry the tool's "21 C" once per city: weather the
    model invented instead of looking it up (seen: "sunny, 20 degrees") fails."""
    outbox = state["outbox"]
    assert len(outbox) == 1, f"expected exactly one email, got {outbox!r}"
    to, body = outbox[0]
    assert to == "bob@example.com", outbox
    assert "Paris" in body and "Tokyo" in body, f"the body lacks a city: {body!r}"
    assert body.count("21 C") >= 2, f"the body lacks the looked-up weather of both cities: {body!r}"


def _one_apple_order(state: dict[str, Any]) -> None:
    """The framework snippets: the price looked up, and exactly one order, an apple at the
    looked-up 2.5 (an invented price, a second order or none at all fails)."""
    assert state["lookups"], "the price was never looked up"
    assert state["orders"] == [["apple", 2.5]], f"expected one apple ordered at 2.5, got {state['orders']!r}"


CHECKS: dict[str, tuple[tuple[str, ...], Callable[[dict[str, Any]], None]]] = {
    "one_email_to_bob": (("outbox",), _one_email_to_bob),
    "one_apple_order": (("orders", "lookups"), _one_apple_order),
}
"""``check=NAME``: the globals to read after the block ends, and what must hold for them."""

HARNESS = """\
import json, runpy, sys
scope = runpy.run_path(sys.argv[1], run_name="__main__")
with open(sys.argv[2], "w", encoding="utf-8") as out:
    json.dump({name: scope.get(name) for name in sys.argv[3:]}, out, default=repr)
"""


# -- python ----------------------------------------------------------------------------------


def run_python(
    block: Block,
    mode: str | None,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    *,
    llm: bool | None = None,
) -> None:
    """Run one python block (``llm``: against the embedded model; None: when its marker says ``llm``)."""
    if llm is None:
        llm = "llm" in block.marker
    code = block.code
    if mode is not None:
        assert 'mode="async"' in code, f'{block.where}: modes= needs mode="async" in the block'
        code = code.replace('mode="async"', f'mode="{mode}"')
    script = tmp_path / "docs_block.py"  # not a module name a block imports
    script.write_text(code, encoding="utf-8")
    argv = [sys.executable, str(script)]
    check = block.option("check")
    state = tmp_path / "state.json"
    if check is not None:
        assert check in CHECKS, f"{block.where}: unknown check {check!r} (known: {', '.join(CHECKS)})"
        harness = tmp_path / "docs_harness.py"
        harness.write_text(HARNESS, encoding="utf-8")
        argv = [sys.executable, str(harness), str(script), str(state), *CHECKS[check][0]]
    env = dict(os.environ)
    timeout = TIMEOUT_S
    if llm:
        env["ASYNCFC_BASE_URL"] = request.getfixturevalue("llm_server").base_url
        timeout = LLM_TIMEOUT_S
    simulation: Simulation | None = None
    with contextlib.ExitStack() as stack:
        if "sim-server" in block.marker and not llm:
            name = block.marker[block.marker.index("sim-server") + 1]
            assert name in SIMULATIONS, f"{block.where}: unknown simulation {name!r}"
            simulation = SIMULATIONS[name]
            srv = stack.enter_context(SimServer(simulation.turns))
            env["ASYNCFC_BASE_URL"] = srv.base_url
        done = subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        assert done.returncode == 0, (
            f"{block.where} exited {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-5000:]}"
        )
        if simulation is not None:
            simulation.check(srv, done.stdout, mode)
    if check is not None:
        CHECKS[check][1](json.loads(state.read_text(encoding="utf-8")))
    if block.output is not None:
        got = [line.rstrip() for line in done.stdout.rstrip("\n").splitlines()]
        want = [line.rstrip() for line in block.output.rstrip("\n").splitlines()]
        assert got == want, f"{block.where}: stdout differs from the output block that follows it"


# -- shell -----------------------------------------------------------------------------------

FAST = (("--version",), ("bench", "synthetic"), ("demo", "--no-llm"))
"""asyncfc commands run for real (first word, and every word somewhere after it): quick, and
needing no model, network or upstream server; ``--help`` anywhere too."""


def _is_fast(args: list[str]) -> bool:
    if "--help" in args or "-h" in args:
        return True
    return any(args[:1] == [f[0]] and set(f) <= set(args) for f in FAST)


def commands(block: Block) -> list[list[str]]:
    """The command lines of a shell block, split as the shell would (comments dropped)."""
    lines: list[str] = []
    pending = ""
    for raw in block.code.splitlines():
        line = raw.rstrip()
        if block.lang == "console":
            if not line.startswith("$ ") and not pending:
                continue  # output
            line = line[2:] if line.startswith("$ ") else line
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    out = []
    for line in lines:
        words = shlex.split(line, comments=True)
        if words:
            out.append(words)
    return out


def _parse_cli(args: list[str], where: str) -> None:
    from asyncfc.cli import build_parser

    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        try:
            build_parser().parse_args(args)
        except SystemExit as exc:
            assert exc.code in (0, None), (
                f"{where}: `asyncfc {shlex.join(args)}` is refused: {err.getvalue()}"
            )


def _run(argv: list[str], where: str) -> None:
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert done.returncode == 0, (
        f"{where}: `{shlex.join(argv)}` exited {done.returncode}: {done.stderr[-3000:]}"
    )


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, flags=re.M)} - {".PHONY"}


def distributions() -> dict[str, set[str]]:
    """Each distribution of this repository and the extras it declares."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    out = {}
    for file in (ROOT / "pyproject.toml", ROOT / "bench" / "pyproject.toml"):
        project = tomllib.loads(file.read_text(encoding="utf-8"))["project"]
        out[project["name"]] = set(project.get("optional-dependencies", {}))
    return out


def _check_pip(args: list[str], where: str) -> None:
    from packaging.requirements import Requirement

    assert args[:1] == ["install"], f"{where}: only `pip install` is checked, got `pip {shlex.join(args)}`"
    known = distributions()
    words = iter(args[1:])
    for word in words:
        if word == "-e":
            folder = ROOT / next(words)
            assert (folder / "pyproject.toml").is_file(), f"{where}: -e {folder} is not a distribution folder"
            continue
        assert not word.startswith("-"), f"{where}: no rule for pip option {word}"
        req = Requirement(word)
        assert req.name in known, f"{where}: {req.name} is not one of {sorted(known)}"
        unknown = set(req.extras) - known[req.name]
        assert not unknown, (
            f"{where}: {req.name} has no extra(s) {sorted(unknown)} (it has {sorted(known[req.name])})"
        )


def check_shell(block: Block) -> None:
    found = commands(block)
    assert found, f"{block.where}: a shell block without a command"
    for argv in found:
        program = argv[0].removeprefix(".venv/bin/")
        if program == "asyncfc":
            if _is_fast(argv[1:]):
                _run([sys.executable, "-m", "asyncfc.cli", *argv[1:]], block.where)
            else:
                _parse_cli(argv[1:], block.where)
        elif program == "make":
            missing = set(argv[1:]) - makefile_targets()
            assert argv[1:] and not missing, f"{block.where}: no Makefile target(s) {sorted(missing)}"
        elif program == "pip":
            _check_pip(argv[1:], block.where)
        elif program in ("python", "python3"):
            script = ROOT / argv[1] if len(argv) > 1 else ROOT
            assert script.is_file(), f"{block.where}: {argv[1:]} is not a file here"
            if script.is_relative_to(ROOT / "examples"):
                _run([sys.executable, *argv[1:]], block.where)
            else:  # a tool that writes files (docs/results/record.py): it must exist and compile
                compile(script.read_text(encoding="utf-8"), str(script), "exec")
        else:
            raise AssertionError(f"{block.where}: no rule for the command `{shlex.join(argv)}`")


# -- other languages -----------------------------------------------------------------------


def check_toml(block: Block) -> None:
    pytest.importorskip("mcp")
    from asyncfc.integrations.mcp import parse_annotations

    parse_annotations(block.code, source=block.where)


def check_json(block: Block) -> None:
    data = json.loads(block.code)
    for name, server in (data.get("mcpServers") or {}).items() if isinstance(data, dict) else []:
        if server.get("command") == "asyncfc":
            _parse_cli(list(server.get("args", [])), f"{block.where} ({name})")


@pytest.mark.parametrize(("block", "mode", "llm"), list(collect()))
def test_code_block(
    block: Block, mode: str | None, llm: bool, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if block.lang == "python":
        run_python(block, mode, tmp_path, request, llm=llm)
    elif block.lang in ("bash", "console"):
        assert not block.marker, f"{block.where}: test markers apply to python blocks only"
        check_shell(block)
    elif block.lang == "toml":
        check_toml(block)
    elif block.lang == "json":
        check_json(block)
    else:
        raise AssertionError(
            f"{block.where}: no rule for a {block.lang or 'unlabelled'!r} block (use python, bash, console, "
            "toml, json, or text for what is not code)"
        )
