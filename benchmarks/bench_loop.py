"""The generated project from copy to green tests, and its local loop per step.

Renders the default project (copier, from this checkout), installs it with uv (the package cache is warm
after the first install on a machine), runs its own test suite once, then runs `run-all` N times, each in a
fresh local lakehouse, and prints each step's median seconds (as `run-all` reports them) and the median
wall time of the whole process (interpreter start, imports and Sail start included).

    uv run python benchmarks/bench_loop.py [--repeat 3] [--customers 50000] [--skip-tests]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import copier

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("features", "train", "promote", "score", "monitor")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the outer uv project's virtualenv, so the project uses its own."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}}
    return {**env, "UV_COMPILE_BYTECODE": "1", **extra}


def timed(command: list[str], cwd: Path, **env: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=clean_env(**env), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        tail = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{tail}")
    return elapsed, done.stdout + done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--skip-tests", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "churn-model"
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            copier.run_copy(str(ROOT), str(project), defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True)
        copy_s = time.perf_counter() - started
        sync_s, _ = timed(["uv", "sync", "--quiet"], project)
        print(f"copy {copy_s:.1f}s, install (uv sync, warm cache) {sync_s:.1f}s")
        if not args.skip_tests:
            tests_s, output = timed(["uv", "run", "--quiet", "pytest", "-q", "-p", "no:warnings"], project)
            summary = output.strip().splitlines()[-1]
            print(f"project tests {tests_s:.1f}s ({summary}); copy to green {copy_s + sync_s + tests_s:.1f}s")

        steps: dict[str, list[float]] = {step: [] for step in STEPS}
        walls = []
        for i in range(args.repeat):
            home = Path(tmp) / f"lakehouse-{i}"
            wall, output = timed(
                ["uv", "run", "--quiet", "churn-model", "-p", f"customers={args.customers}", "run-all"],
                project,
                LAKEHOUSE_DIR=str(home),
            )
            walls.append(wall)
            done_line = output.split("Done in", 1)[1].splitlines()[0]
            for step, seconds in re.findall(r"(\w+) ([\d.]+)s", done_line):
                if step in steps:
                    steps[step].append(float(seconds))

    print(f"\nrun-all on {args.customers:,} customers, median of {args.repeat} (seconds):")
    for step, values in steps.items():
        print(f"  {step:<9} {statistics.median(values):6.2f}")
    print(f"  {'steps':<9} {sum(statistics.median(v) for v in steps.values()):6.2f}")
    print(f"  {'process':<9} {statistics.median(walls):6.2f}   (whole `uv run churn-model run-all`)")


if __name__ == "__main__":
    main()
