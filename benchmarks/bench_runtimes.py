"""For each supported Databricks runtime (runtimes.yml): the generated wheel's resolved requirements against
the versions the runtime preinstalls, and whether installing the wheel there would change any of them.

Renders the project for each runtime line (CPU; the GPU key renders the same requirements), builds its wheel
with `uv build --wheel`, resolves the wheel's Requires-Dist with uv for the runtime's Python against the
runtime's versions as == constraints (tests/runtimes.py, the same proof tests/test_runtimes.py asserts), and
prints one table per runtime and a summary with the time each took. Needs PyPI.

    uv run python benchmarks/bench_runtimes.py [--runtime 15.4.x-cpu-ml-scala2.12 ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import render_template  # noqa: E402
from tests.runtimes import proof_table, prove, runtime_lines, runtime_of  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runtime", action="append", help="a spark_version (default: every line's CPU key)")
    args = parser.parse_args()
    keys = args.runtime or [line["cpu"] for line in runtime_lines()]
    summary = []
    with tempfile.TemporaryDirectory(prefix="bench-runtimes-") as tmp:
        for number, key in enumerate(keys):
            started = time.perf_counter()
            project = render_template(Path(tmp) / f"p{number}" / "project", {"databricks_runtime": key})
            scratch = Path(tmp) / f"s{number}"
            scratch.mkdir()
            proof = prove(project, key, scratch)
            seconds = time.perf_counter() - started
            print(proof_table(proof), end="\n\n")
            changed = sum(row.changed for row in proof.rows)
            summary.append((runtime_of(key)["name"], key, len(proof.rows), changed, proof.ok, seconds))
    print(f"{'runtime':<14} {'spark_version':<26} {'resolved':>8} {'changed':>8}  proof  seconds")
    for name, key, resolved, changed, ok, seconds in summary:
        print(f"{name:<14} {key:<26} {resolved:>8} {changed:>8}  {'ok' if ok else 'FAIL':<5}  {seconds:7.1f}")
    return 0 if all(ok for *_, ok, _ in summary) else 1


if __name__ == "__main__":
    raise SystemExit(main())
