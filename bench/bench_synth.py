"""Warm synth of every environment vs the bare import of CDK Terrain and the provider modules the stacks use.

Both sides run as fresh processes (what `make synth` costs a user), interleaved round by round so machine
noise hits both alike, after one warm-up each (bytecode and the OS file cache warm):
  * baseline: `import cdktn, constructs` + every `cdktn_provider_google.<module>` that stacks/ imports
    (read from the source, so the list follows the stacks); this loads the provider's jsii assembly into
    node, the fixed cost any CDK Terrain app pays before creating a single construct;
  * subject: `python -m stacks --outdir <tmp>`: validate every environments/*.yaml, build the bundle,
    construct and synthesize every stack, write cdktf.out.
ratio = median(subject) / median(baseline); goal <= 1.5x (the stacks' own work costs at most half the import).
"""

from __future__ import annotations

import ast
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / ".bench"
ROUNDS = 5
GOAL = 1.5


def provider_modules() -> list[str]:
    """Every cdktn_provider_google submodule imported anywhere in stacks/."""
    modules = set()
    for path in (ROOT / "stacks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cdktn_provider_google."):
                modules.add(node.module)
    return sorted(modules)


def timed(command: list[str]) -> float:
    environ = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} ... failed:\n{result.stderr[-2000:]}")
    return elapsed


def main() -> int:
    modules = provider_modules()
    baseline_cmd = [sys.executable, "-c", "; ".join(f"import {m}" for m in ["cdktn", "constructs", *modules])]
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        synth_cmd = [sys.executable, "-m", "stacks", "--outdir", str(Path(tmp) / "cdktf.out")]
        timed(baseline_cmd), timed(synth_cmd)  # warm-up: bytecode, file cache, node modules unpacked
        baseline, synth = [], []
        for round_number in range(ROUNDS):
            baseline.append(timed(baseline_cmd))
            synth.append(timed(synth_cmd))
            print(f"round {round_number + 1}/{ROUNDS}: import {baseline[-1]:.2f}s  synth {synth[-1]:.2f}s",
                  flush=True)
        stacks = sorted(p.name for p in (Path(tmp) / "cdktf.out" / "stacks").iterdir())
        resources = sum(len(items) for s in stacks for items in json.loads(
            (Path(tmp) / "cdktf.out" / "stacks" / s / "cdk.tf.json").read_text()).get("resource", {}).values())
    ratio = statistics.median(synth) / statistics.median(baseline)
    goals = [{"name": f"warm synth of {len(stacks)} environments vs bare import of cdktn + "
                      f"{len(modules)} provider modules",
              "measured": f"{ratio:.2f}x", "goal": f"<= {GOAL}x", "met": ratio <= GOAL}]
    details = {"rounds": ROUNDS, "baseline_seconds": [round(s, 3) for s in baseline],
               "synth_seconds": [round(s, 3) for s in synth],
               "median_baseline_seconds": round(statistics.median(baseline), 3),
               "median_synth_seconds": round(statistics.median(synth), 3),
               "stacks": stacks, "resources": resources, "provider_modules": modules}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "synth.json").write_text(json.dumps({"goals": goals, "details": details}, indent=2) + "\n")
    print(json.dumps(details, indent=2))
    for goal in goals:
        print(f"{goal['name']}: {goal['measured']} (goal {goal['goal']}) {'met' if goal['met'] else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
