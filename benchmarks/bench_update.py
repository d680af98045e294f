"""How long `copier update` of the default project takes, next to `copier copy` of the same project.

The template releases come from `tests/template_versions.py`: a throwaway repository with A (v0.1.0), v0.3.0
and B (v0.4.0, this checkout's template), plus here C (v0.4.1, one README line changed). Three cases, N times
each:

* copy:            `copier copy` at B (with the template's first-commit task, as `lakeforge new` runs it)
* update A -> B:   a project made at A and committed, updated to B: crosses the v0.2.0 migration (a rename,
                   whose second stage renders A once more to merge with the right ancestor), v0.3.0's and
                   v0.4.0's (two more renames and a retired file: three more renders of A)
* update B -> C:   a project made at B, updated to C: an ordinary release, no migration

each in-process (`copier.run_copy` / `copier.run_update`) and through the `copier` command. Only the copy or
the update itself is timed; making the project to update is not. Prints median and minimum wall time and the
ratio to the copy of the same method.

    uv run python benchmarks/bench_update.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import copier

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.template_versions import A_TAG, B_TAG, build_versions, git  # noqa: E402

C_TAG = "v0.4.1"


def add_release_c(repo: Path) -> None:
    readme = repo / "template" / "README.md.jinja"
    readme.write_text(readme.read_text().replace("## Quick start\n", "## Quick start (two commands)\n", 1))
    git(repo, "commit", "-q", "-am", "C: a README heading")
    git(repo, "tag", C_TAG)


def copier_command() -> list[str]:
    beside = Path(sys.executable).with_name("copier")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "copier"]


def copy_in_process(src: Path, dst: Path, ref: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(str(src), str(dst), defaults=True, unsafe=True, vcs_ref=ref, quiet=True)


def update_in_process(dst: Path, ref: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_update(
            str(dst), defaults=True, unsafe=True, overwrite=True, conflict="inline", vcs_ref=ref, quiet=True
        )


def copy_command(src: Path, dst: Path, ref: str) -> None:
    command = [
        *copier_command(),
        "copy",
        "--trust",
        "--defaults",
        "--quiet",
        "--vcs-ref",
        ref,
        str(src),
        str(dst),
    ]
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL, capture_output=True)


def update_command(dst: Path, ref: str) -> None:
    command = [*copier_command(), "update", "--trust", "--defaults", "--quiet", "--vcs-ref", ref, str(dst)]
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL, capture_output=True)


def timed(
    run: Callable[[Path], None], scratch: Path, repeat: int, prepare: Callable[[Path], None] | None = None
) -> list[float]:
    times = []
    for i in range(repeat):
        dst = scratch / f"project-{i}"
        if prepare:
            prepare(dst)
        started = time.perf_counter()
        run(dst)
        times.append(time.perf_counter() - started)
        shutil.rmtree(dst)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", "-n", type=int, default=5, help="runs per case (default 5)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-update-") as tmp:
        scratch = Path(tmp)
        repo = build_versions(scratch / "template")
        add_release_c(repo)
        methods = {
            "run_copy/update": (copy_in_process, update_in_process),
            "copier CLI": (copy_command, update_command),
        }
        results: dict[tuple[str, str], list[float]] = {}
        for method, (copy, update) in methods.items():
            copy(repo, scratch / "warm-up", B_TAG)  # the first run pays imports and git's caches
            shutil.rmtree(scratch / "warm-up")
            results[(method, "copy")] = timed(lambda dst, c=copy: c(repo, dst, B_TAG), scratch, args.repeat)
            for case, start, end in (("update A -> B", A_TAG, B_TAG), ("update B -> C", B_TAG, C_TAG)):
                results[(method, case)] = timed(
                    lambda dst, u=update, end=end: u(dst, end),
                    scratch,
                    args.repeat,
                    prepare=lambda dst, start=start: copy_in_process(repo, dst, start),
                )

    print(
        f"copier {copier.__version__}, default project, {args.repeat} runs per case, wall time in seconds\n"
    )
    print(f"{'method':<16} {'case':<14} {'median':>8} {'min':>8} {'x copy':>7}")
    for (method, case), times in results.items():
        median = statistics.median(times)
        base = statistics.median(results[(method, "copy")])
        print(f"{method:<16} {case:<14} {median:>8.2f} {min(times):>8.2f} {median / base:>6.1f}x")


if __name__ == "__main__":
    main()
