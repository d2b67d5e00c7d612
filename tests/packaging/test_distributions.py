"""The library distribution stands alone: its wheel holds no benchmark, its requirements
name neither rich nor matplotlib, and it imports and runs without the benchmark's packages."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (found,) = out.glob("asyncfc-*.whl")
    return found


def test_the_wheel_holds_the_library_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    packages = {n.split("/")[0] for n in names}
    assert packages == {"asyncfc", f"{wheel.name.split('-py3')[0]}.dist-info"}
    assert not [n for n in names if "bench" in n or n.endswith("demo.py")]
    assert "asyncfc/py.typed" in names


def test_its_requirements_leave_plotting_and_terminal_output_to_extras(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        meta = next(whl.read(n).decode() for n in whl.namelist() if n.endswith("/METADATA"))
    required = [
        line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")
    ]
    core = [r for r in required if "extra ==" not in r]
    assert not [r for r in core if r.startswith(("rich", "matplotlib", "asyncfc-bench"))], core
    assert any(r.startswith("matplotlib") and 'extra == "plot"' in r for r in required)


BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"rich", "matplotlib", "asyncfc_bench", "bfcl_eval"}:
            raise ImportError(f"{name} is not installed (blocked by the test)")
sys.meta_path.insert(0, Block())
"""


def test_the_library_imports_and_runs_the_quickstart_without_the_benchmark() -> None:
    script = BLOCKER + (
        "import runpy\n"
        "import asyncfc, asyncfc.testing, asyncfc.models, asyncfc.executors, asyncfc.local, asyncfc.model_text\n"
        f"runpy.run_path({str(ROOT / 'examples' / 'quickstart.py')!r}, run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["sync", "async"]
    assert all(line.endswith("email: sent to bob@example.com: sunny in Paris") for line in lines)


def test_without_the_benchmark_its_subcommands_say_what_to_install() -> None:
    script = BLOCKER + (
        "import importlib.metadata as md\n"
        "md.entry_points = lambda group=None: []  # as if asyncfc-bench were not installed\n"
        "from asyncfc.cli import main\n"
        "raise SystemExit(main(['bench', 'synthetic', '--json']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 3
    assert done.stderr.strip() == "asyncfc bench comes with the benchmark suite: pip install asyncfc-bench"


def test_plotting_without_matplotlib_names_the_extra() -> None:
    script = BLOCKER + (
        "from asyncfc import Trace, plot_timeline\n"
        "from asyncfc.errors import UsageError\n"
        "try:\n"
        "    plot_timeline({'run': Trace()}, 'never.png')\n"
        "except UsageError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.stdout.strip() == "plot_timeline needs matplotlib: pip install 'asyncfc[plot]'", done.stderr
