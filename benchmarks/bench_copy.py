"""How long `copier copy --defaults` of the lakeforge template takes, against a one-file template.

Both templates are rendered from git at HEAD (the lakeforge checkout with its uncommitted changes, as
`lakeforge new` does; the one-file template committed in a temporary repository), in-process with
`copier.run_copy` and through the `copier` command, N times each. Prints median and minimum wall time and
the ratio lakeforge / one-file per method.

    uv run python benchmarks/bench_copy.py [--repeat 5]
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


def one_file_template(folder: Path) -> Path:
    """A template with one question and one file, committed so copier clones it like the real one."""
    folder.mkdir()
    (folder / "copier.yml").write_text("project_name:\n  type: str\n  default: Churn Model\n")
    (folder / "README.md.jinja").write_text("# {{ project_name }}\n")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=folder, check=True)
    subprocess.run([*git, "add", "-A"], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one file"], cwd=folder, check=True)
    return folder


def copier_command() -> list[str]:
    beside = Path(sys.executable).with_name("copier")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "copier"]


def in_process(src: Path) -> Callable[[Path], None]:
    def copy(dst: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            copier.run_copy(str(src), str(dst), defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True)

    return copy


def command(src: Path) -> Callable[[Path], None]:
    def copy(dst: Path) -> None:
        subprocess.run(
            [
                *copier_command(),
                "copy",
                "--trust",
                "--defaults",
                "--quiet",
                "--vcs-ref",
                "HEAD",
                str(src),
                str(dst),
            ],
            check=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
        )

    return copy


def timed(copy: Callable[[Path], None], scratch: Path, repeat: int) -> list[float]:
    times = []
    for i in range(repeat):
        dst = scratch / f"out-{i}"
        started = time.perf_counter()
        copy(dst)
        times.append(time.perf_counter() - started)
        shutil.rmtree(dst)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", "-n", type=int, default=5, help="copies per case (default 5)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-copy-") as tmp:
        scratch = Path(tmp)
        small = one_file_template(scratch / "one-file-template")
        results: dict[tuple[str, str], list[float]] = {}
        for method, make in (("run_copy", in_process), ("copier CLI", command)):
            for name, src in (("one-file", small), ("lakeforge", ROOT)):
                make(src)(scratch / "warm-up")  # first copy pays imports and git's caches
                shutil.rmtree(scratch / "warm-up")
                results[(method, name)] = timed(make(src), scratch, args.repeat)

    print(f"copier {copier.__version__}, {args.repeat} copies per case, wall time in seconds\n")
    print(f"{'method':<12} {'template':<10} {'median':>8} {'min':>8} {'ratio':>7}")
    for (method, name), times in results.items():
        median = statistics.median(times)
        base = statistics.median(results[(method, "one-file")])
        print(f"{method:<12} {name:<10} {median:>8.3f} {min(times):>8.3f} {median / base:>6.1f}x")


if __name__ == "__main__":
    main()
