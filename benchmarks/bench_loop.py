"""The generated project from copy to green tests, and its local loop per step.

Renders the default project (copier, from this checkout), installs it with uv (the package cache is warm
after the first install on a machine), runs its own test suite once, then, for each population size, runs
`run-all` N times, each in a fresh local lakehouse, and prints each step's median seconds (as `run-all`
reports them), the median wall time of the whole process (interpreter start, imports and Sail start
included), its peak memory (the largest resident set of the process tree's processes; Sail runs inside the
Python process) and the ratios to the first size.

    uv run python benchmarks/bench_loop.py [--repeat 3] [--customers 50000,500000,5000000] [--skip-tests]
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


# Runs a command and prints, last on stderr, the peak resident set (KiB) of its process tree: the children's
# ru_maxrss of a process that has no other children.
PEAK = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss; "
    "print(f'peak_kib={peak}', file=sys.stderr); sys.exit(code)"
)


def timed(command: list[str], cwd: Path, **env: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=clean_env(**env), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        tail = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{tail}")
    return elapsed, done.stdout + done.stderr


def run_all(project: Path, customers: int, home: Path) -> tuple[dict[str, float], float, float]:
    """One `run-all` in a fresh lakehouse: its steps' seconds, its wall seconds and its peak memory in MiB."""
    command = [sys.executable, "-c", PEAK, ".venv/bin/churn-model", "-p", f"customers={customers}", "run-all"]
    wall, output = timed(command, project, LAKEHOUSE_DIR=str(home))
    done_line = output.split("Done in", 1)[1].splitlines()[0]
    found = re.findall(r"(\w+) ([\d.]+)s", done_line)
    steps = {step: float(seconds) for step, seconds in found if step in STEPS}
    peak_mib = int(re.search(r"peak_kib=(\d+)", output).group(1)) / 1024
    return steps, wall, peak_mib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--customers", default="50000,500000,5000000", help="sizes, comma-separated")
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

        sizes = [int(n) for n in args.customers.split(",")]
        results = []
        for customers in sizes:
            homes = [Path(tmp) / f"lakehouse-{customers}-{i}" for i in range(args.repeat)]
            runs = [run_all(project, customers, home) for home in homes]
            steps = {step: statistics.median(r[0][step] for r in runs) for step in STEPS}
            wall = statistics.median(r[1] for r in runs)
            peak = statistics.median(r[2] for r in runs)
            results.append((customers, steps, wall, peak))
            print(
                f"{customers:>10,} customers: "
                + ", ".join(f"{step} {seconds:.1f}s" for step, seconds in steps.items())
                + f"; steps {sum(steps.values()):.1f}s, process {wall:.1f}s, peak memory {peak:,.0f} MiB",
                flush=True,
            )

    first_steps, first_wall = sum(results[0][1].values()), results[0][2]
    print(f"\nrun-all, median of {args.repeat} per size (ratios to {sizes[0]:,} customers):")
    header = ("customers", "steps s", "process s", "peak MiB", "x steps", "x process")
    print("  " + "  ".join(f"{h:>10}" for h in header))
    for customers, steps, wall, peak in results:
        total = sum(steps.values())
        cells = (f"{customers:,}", f"{total:.1f}", f"{wall:.1f}", f"{peak:,.0f}")
        ratios = (f"{total / first_steps:.1f}", f"{wall / first_wall:.1f}")
        print("  " + "  ".join(f"{c:>10}" for c in (*cells, *ratios)))


if __name__ == "__main__":
    main()
