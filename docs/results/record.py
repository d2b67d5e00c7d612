"""Run one benchmark command and store its JSON output for the docs.

    python docs/results/record.py NAME -- asyncfc bench synthetic --json

writes ``docs/results/NAME.json``: ``{"command", "recorded", "load_average", "cpus",
"exit_code", "output"}``, where ``output`` is exactly the JSON object the command printed and
``load_average`` the machine's 1-minute load when it started, beside its ``cpus`` (other
work running at the same time skews timings). ``docs/hooks/results.py`` renders
it into the page that holds ``<!-- results: NAME -->``. Nothing else writes these files.
"""

from __future__ import annotations

import datetime
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    name, command = argv[0], argv[2:]
    bin_dir = Path(sys.executable).parent
    exe = [str(bin_dir / command[0]) if (bin_dir / command[0]).exists() else command[0], *command[1:]]
    started = datetime.datetime.now(datetime.timezone.utc)
    load = os.getloadavg()[0]
    done = subprocess.run(exe, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        sys.stderr.write(done.stderr)
        return done.returncode
    record = {
        "command": shlex.join(command),
        "recorded": started.strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": round(load, 2),
        "cpus": os.cpu_count(),
        "exit_code": done.returncode,
        "output": json.loads(done.stdout),
    }
    (HERE / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {HERE / (name + '.json')} (exit code {done.returncode})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
