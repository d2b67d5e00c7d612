"""What the docs promise about themselves: the options tables match the code, the README stays
short and its links resolve, benchmark results come only from stored JSON, and the code-block
collector refuses what it should."""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
import sys
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from asyncfc import ASYNC_INSTRUCTIONS, Agent, Runtime

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _table(markdown: str, heading: str) -> dict[str, str]:
    """The first table under ``heading``: the backticked name in the first cell -> the second cell."""
    section = markdown.split(heading, 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = re.fullmatch(r"`(\w+)`", cells[0]) if line.startswith("|") else None
        if name:
            rows[name.group(1)] = cells[1]
    return rows


def _shown(default: Any) -> str:
    """A default as the options page writes it."""
    if default is ASYNC_INSTRUCTIONS:
        return "`ASYNC_INSTRUCTIONS`"
    if isinstance(default, Enum):
        default = default.value
    return f'`"{default}"`' if isinstance(default, str) else f"`{default!r}`"


@pytest.mark.parametrize(
    ("cls", "heading", "positional"),
    [(Agent, "## `Agent(model, tools, ...)`", 2), (Runtime, "## `Runtime(tools, ...)`", 1)],
    ids=["Agent", "Runtime"],
)
def test_options_tables_match_the_signatures(cls: type, heading: str, positional: int) -> None:
    rows = _table((DOCS / "options.md").read_text(encoding="utf-8"), heading)
    params = list(inspect.signature(cls.__init__).parameters.values())[1 + positional :]
    assert set(rows) == {p.name for p in params}, "options.md lists other options than the code has"
    for p in params:
        assert rows[p.name] == _shown(p.default), (
            f"{cls.__name__}({p.name}=...): the page says {rows[p.name]}"
        )


def test_readme_is_short_and_its_links_resolve() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert links, "the README links to the docs"
    for link in links:
        if not link.startswith(("http://", "https://")):
            assert (ROOT / link).is_file(), f"README links to {link}, which does not exist"


@pytest.fixture(scope="module")
def hook() -> ModuleType:
    pytest.importorskip("mkdocs")
    return _load(DOCS / "hooks" / "results.py", "docs_results_hook")


def test_every_results_placeholder_renders_from_its_file(hook: ModuleType) -> None:
    names = set()
    for page in DOCS.rglob("*.md"):
        names |= set(hook.PLACEHOLDER.findall(page.read_text(encoding="utf-8")))
    assert names, "the benchmarks page shows stored results"
    for name in sorted(names):
        record = json.loads((DOCS / "results" / f"{name}.json").read_text(encoding="utf-8"))
        rendered = hook.render(name, "page.md")
        assert f"`{record['command']}`" in rendered and record["recorded"] in rendered


def test_a_missing_results_file_fails_the_build(hook: ModuleType, tmp_path: Path) -> None:
    from mkdocs.exceptions import PluginError

    hook.RESULTS, saved = tmp_path, hook.RESULTS
    try:
        with pytest.raises(PluginError, match=r"results file .*synthetic\.json is missing; produce it with"):
            hook.render("synthetic", "benchmarks.md")
    finally:
        hook.RESULTS = saved
    with pytest.raises(PluginError, match="no renderer for results 'nonsense'"):
        hook.render("nonsense", "benchmarks.md")


def test_import_layers_render_from_pyproject(hook: ModuleType) -> None:
    rendered = hook.render_layers("architecture.md")
    for module in ("asyncfc.errors", "asyncfc.runtime", "asyncfc.scheduler", "asyncfc.cli"):
        assert f"`{module}`" in rendered


# -- the collector itself ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def collector() -> ModuleType:
    return _load(Path(__file__).with_name("test_code_blocks.py"), "docs_code_blocks")


def _blocks(collector: ModuleType, tmp_path: Path, text: str) -> list[Any]:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    collector.ROOT, saved = tmp_path, collector.ROOT
    try:
        blocks: list[Any] = collector.parse_blocks(page)
    finally:
        collector.ROOT = saved
    return blocks


def test_collector_reads_markers_and_output_blocks(collector: ModuleType, tmp_path: Path) -> None:
    blocks = _blocks(
        collector,
        tmp_path,
        "Intro.\n\n<!-- test: llm check=x modes=async,sync -->\n```python\nprint(1)\n```\n\n"
        '```text title="output"\n1\n```\n\n```bash\nmake test\n```\n',
    )
    assert [(b.lang, b.line) for b in blocks] == [("python", 4), ("text", 8), ("bash", 12)]
    assert blocks[0].marker == ["llm", "check=x", "modes=async,sync"]
    assert blocks[0].option("modes") == "async,sync" and blocks[0].output == "1\n"
    assert blocks[2].marker == [] and blocks[2].output is None


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("asyncfc bench load --users 3", "is refused"),
        ("asyncfc mcp serve --grace -1", "is refused"),
        ("make tests", "no Makefile target"),
        ("pip install 'asyncfc[gpu]'", "has no extra"),
        ("pip install asyncfc-benchmarks", "is not one of"),
        ("curl https://example.com", "no rule for the command"),
    ],
)
def test_collector_refuses_wrong_commands(
    collector: ModuleType, tmp_path: Path, command: str, reason: str
) -> None:
    (block,) = _blocks(collector, tmp_path, f"```bash\n{command}\n```\n")
    block.path = collector.ROOT / "page.md"
    with pytest.raises(AssertionError, match=reason):
        collector.check_shell(block)


def test_collector_accepts_what_the_parser_accepts(collector: ModuleType, tmp_path: Path) -> None:
    (block,) = _blocks(
        collector,
        tmp_path,
        "```console\n$ asyncfc model serve --size 0.5b\nhttp://127.0.0.1:1234/v1\n"
        "$ asyncfc bench load \\\n    --sessions 10 --json   # a comment\n$ make docs\n```\n",
    )
    block.path = collector.ROOT / "page.md"
    assert collector.commands(block) == [
        ["asyncfc", "model", "serve", "--size", "0.5b"],
        ["asyncfc", "bench", "load", "--sessions", "10", "--json"],
        ["make", "docs"],
    ]
    collector.check_shell(block)


TEN_LINES_STANDIN = """\
options = dict(mode="async")  # the collector replaces the mode, as in the README
outbox = [("bob@example.com", "Paris: sunny, 21 C in Paris; Tokyo: sunny, 21 C in Tokyo")]
"""


def test_collector_runs_checks_on_the_globals_of_each_mode(
    collector: ModuleType, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The README's ten lines run as an llm test; here a stand-in exercises the same path."""
    text = f"<!-- test: check=one_email_to_bob modes=async,sync -->\n```python\n{TEN_LINES_STANDIN}```\n"
    (block,) = _blocks(collector, tmp_path, text)
    block.path = collector.ROOT / "page.md"
    for mode in ("async", "sync"):
        collector.run_python(block, mode, tmp_path, request)
    two = _blocks(collector, tmp_path, text.replace("outbox = [", "outbox = 2 * ["))[0]
    two.path = collector.ROOT / "page.md"
    with pytest.raises(AssertionError, match="expected exactly one email"):
        collector.run_python(two, "async", tmp_path, request)


def test_collector_compares_stdout_with_the_output_block(
    collector: ModuleType, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    text = '```python\nprint("one")\n```\n\n```text title="output"\ntwo\n```\n'
    block = _blocks(collector, tmp_path, text)[0]
    block.path = collector.ROOT / "page.md"
    with pytest.raises(AssertionError, match="stdout differs from the output block"):
        collector.run_python(block, None, tmp_path, request)
