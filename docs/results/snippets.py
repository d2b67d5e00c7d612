"""Run the framework guides' snippets on the embedded model and print what they did, as JSON.

    python docs/results/snippets.py --tries 3 [--modes async,sync] [--pages pydantic-ai,...]

Each page's tested block (docs/integrations/PAGE.md) runs as written, in a fresh process,
once per mode (``mode="async"`` replaced) and try, against ``ASYNCFC_BASE_URL`` or else the
embedded model (started if needed). A try passes when the block exits 0 and its ``orders``
global is exactly one apple at the looked-up 2.5, with the lookup done (the check the
``llm`` docs test applies). Record it for the docs with
``python docs/results/record.py snippets-local -- python docs/results/snippets.py --tries 3``
(run it under ``flock /tmp/llm.lock``: the model server has one slot).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("pydantic-ai", "openai-agents", "langgraph")
BLOCK = re.compile(r"<!-- test: [^\n]*\bllm\b[^\n]*-->\n```python\n(?P<code>.*?)\n```\n", re.S)
TIMEOUT_S = 600


def block_of(page: str) -> str:
    text = (ROOT / "docs" / "integrations" / f"{page}.md").read_text(encoding="utf-8")
    m = BLOCK.search(text)
    if m is None:
        raise SystemExit(f"docs/integrations/{page}.md has no llm-tested python block")
    return m["code"] + "\n"


def run_once(code: str, mode: str, folder: Path) -> dict[str, Any]:
    script = folder / "snippet.py"
    script.write_text(code.replace('mode="async"', f'mode="{mode}"'), encoding="utf-8")
    state = folder / "state.json"
    harness = folder / "harness.py"
    harness.write_text(
        "import json, runpy, sys\n"
        "scope = {}\n"
        "try:\n"
        "    scope = runpy.run_path(sys.argv[1], run_name='__main__')\n"
        "finally:\n"
        "    with open(sys.argv[2], 'w') as out:\n"
        "        json.dump({k: scope.get(k) for k in ('orders', 'lookups')}, out, default=repr)\n",
        encoding="utf-8",
    )
    state.unlink(missing_ok=True)
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, str(harness), str(script), str(state)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        code_, err = done.returncode, done.stderr
    except subprocess.TimeoutExpired:
        code_, err = None, f"timed out after {TIMEOUT_S} s"
    seconds = round(time.monotonic() - started, 1)
    saved = json.loads(state.read_text()) if state.exists() else {}
    orders, lookups = saved.get("orders"), saved.get("lookups")
    passed = code_ == 0 and orders == [["apple", 2.5]] and bool(lookups)
    last = [line for line in (err or "").splitlines() if line.strip()]
    return {
        "passed": passed,
        "exit_code": code_,
        "orders": orders,
        "lookups": lookups,
        "seconds": seconds,
        "error": "" if passed else (last[-1][:300] if last else ""),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=3)
    parser.add_argument("--modes", default="async,sync")
    parser.add_argument("--pages", default=",".join(PAGES))
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    out: dict[str, Any] = {"tries": args.tries, "modes": modes, "pages": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for page in args.pages.split(","):
            code = block_of(page)
            runs: dict[str, list[dict[str, Any]]] = {}
            for mode in modes:
                runs[mode] = [run_once(code, mode, Path(tmp)) for _ in range(args.tries)]
                print(f"{page} {mode}: {sum(r['passed'] for r in runs[mode])}/{args.tries}", file=sys.stderr)
            out["pages"][page] = runs
    out["base_url"] = os.environ.get("ASYNCFC_BASE_URL", "")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
