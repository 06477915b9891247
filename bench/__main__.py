"""`make bench`: run every bench/bench_*.py in its own process, one after another, and collect the results.

Each benchmark measures its subject against a baseline *in the same run* and reports ratios (absolute
times on a shared 2-core machine are noise). Each writes `.bench/<name>.json`; this runner prints a
summary table of every goal at the end and writes `.bench/summary.md` (the figures the README quotes).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / ".bench"


def main(argv: list[str]) -> int:
    selected = set(argv)
    scripts = sorted(p for p in (ROOT / "bench").glob("bench_*.py")
                     if not selected or p.stem.removeprefix("bench_") in selected)
    RESULTS.mkdir(exist_ok=True)
    failures = []
    for script in scripts:
        print(f"\n=== {script.stem} ===", flush=True)
        started = time.perf_counter()
        if subprocess.run([sys.executable, str(script)], cwd=ROOT).returncode != 0:
            failures.append(script.stem)
        print(f"=== {script.stem}: {time.perf_counter() - started:.0f}s", flush=True)
    rows = []
    for result in sorted(RESULTS.glob("*.json")):
        data = json.loads(result.read_text())
        rows += [(result.stem, goal["name"], goal["measured"], goal["goal"], "met" if goal["met"] else "MISSED")
                 for goal in data.get("goals", [])]
    lines = ["| benchmark | measure | measured | goal | |", "|---|---|---|---|---|"]
    lines += [f"| {b} | {n} | {m} | {g} | {s} |" for b, n, m, g, s in rows]
    (RESULTS / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))
    if failures:
        print(f"\nbenchmarks that failed to run: {', '.join(failures)}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
