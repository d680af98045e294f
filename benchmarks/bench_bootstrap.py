"""Benchmark `lakeforge bootstrap` against the fake workspace with 50 ms of latency on every call.

    uv run --extra test python benchmarks/bench_bootstrap.py [--notebooks 100] [--latency 0.05]

Renders the default project, gives it 100 notebooks, and prints:
- the workspace import of the project's code, serial (1 thread) against concurrent (lakeforge's pool), and the
  ratio (the target is at least 5x);
- the API calls of a cold bootstrap and of a warm re-run, and the warm run's mutating calls (must be 0); then
  a warm re-run against a workspace that leaves out fields it accepted (the fake's `drop_fields`: an emulator
  drops notebook_task.source and data_security_mode), whose mutating calls must be 0 too.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lakeforge import workspace_files  # noqa: E402
from lakeforge.apply import apply_plan  # noqa: E402
from lakeforge.changes import Desired  # noqa: E402
from lakeforge.config import load_config  # noqa: E402
from lakeforge.connection import connect  # noqa: E402
from lakeforge.manifest import Manifest  # noqa: E402
from lakeforge.plan import plan_bootstrap  # noqa: E402
from lakeforge.template import create_project  # noqa: E402

from tests.fake_workspace import FakeWorkspace, MlflowServer  # noqa: E402


def make_project(folder: Path, notebooks: int) -> Path:
    project = create_project(folder / "churn-model", {}, defaults=True)
    source = project / "notebooks"
    existing = sorted(source.glob("*.py"))
    for i in range(len(existing), notebooks):
        template = existing[i % len(existing)]
        (source / f"{i + 1:03d}_extra_{template.stem}.py").write_text(template.read_text())
    return project


def import_seconds(w, config, root: str, max_workers: int) -> float:
    """Time the import of every project file into an empty `root`, with `max_workers` threads."""
    target = dataclasses.replace(config.target, workspace_root=root)
    config = dataclasses.replace(config, target=target)
    desired = Desired(
        config=config, host=w.config.host, user="bench", wheel=None, files=workspace_files.local_files(config)
    )
    changes = workspace_files.plan(w, desired, Manifest(), {}).changes
    start = time.perf_counter()
    workspace_files.apply(w, changes, desired, {}, lambda message: None, max_workers=max_workers)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every API call")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-bootstrap-") as tmp:
        tmp_path = Path(tmp)
        mlflow = MlflowServer(tmp_path / "mlflow").start()
        try:
            with FakeWorkspace.start(mlflow_url=mlflow.url) as ws:
                for name in [n for n in os.environ if n.startswith("DATABRICKS_")]:
                    del os.environ[name]
                os.environ.update(ws.env())
                os.environ["DATABRICKS_CONFIG_FILE"] = str(tmp_path / "no-databrickscfg")
                project = make_project(tmp_path, args.notebooks)
                config = load_config(project, "dev")
                w = connect(config.target)
                mlflow.wait_ready()
                files = workspace_files.local_files(config)
                notebooks = sum(1 for f in files if f.type == "notebook")
                ws.inject(latency=args.latency)
                print(
                    f"project: {notebooks} notebooks + {len(files) - notebooks} package files; "
                    f"latency {args.latency * 1000:.0f} ms per call"
                )

                pool = workspace_files.MAX_WORKERS
                w.workspace.mkdirs("/Shared/bench")
                serial = import_seconds(w, config, "/Workspace/Shared/bench/serial", 1)
                concurrent = import_seconds(w, config, "/Workspace/Shared/bench/concurrent", pool)
                print(
                    f"import of {len(files)} files: serial {serial:.2f} s, concurrent ({pool} threads) "
                    f"{concurrent:.2f} s, {serial / concurrent:.1f}x faster (target >= 5x)"
                )

                ws.reset_calls()
                start = time.perf_counter()
                apply_plan(w, plan_bootstrap(w, config))
                cold_seconds = time.perf_counter() - start
                cold = ws.calls()
                ws.reset_calls()
                start = time.perf_counter()
                warm_plan = plan_bootstrap(w, config)
                apply_plan(w, warm_plan)
                warm_seconds = time.perf_counter() - start
                warm = ws.calls()
                warm_mutating = [c for c in warm if c["mutating"]]
                print(
                    f"cold bootstrap: {len(cold)} API calls ({sum(c['mutating'] for c in cold)} mutating), "
                    f"{cold_seconds:.1f} s (includes the wheel build)"
                )
                print(
                    f"warm bootstrap: {len(warm)} API calls, {len(warm_mutating)} mutating (must be 0), "
                    f"{warm_seconds:.1f} s; plan has changes: {warm_plan.has_changes}"
                )
                ws.configure(drop_fields=["notebook_task.source", "data_security_mode"])
                ws.reset_calls()
                start = time.perf_counter()
                apply_plan(w, plan_bootstrap(w, config))
                dropped_seconds = time.perf_counter() - start
                dropped = [c for c in ws.calls() if c["mutating"]]
                print(
                    f"warm bootstrap, fields not echoed: {len(ws.calls())} API calls, "
                    f"{len(dropped)} mutating "
                    f"(must be 0), {dropped_seconds:.1f} s"
                )
                ok = serial / concurrent >= 5 and not warm_mutating and not dropped
        finally:
            mlflow.stop()
    shutil.rmtree(tmp_path, ignore_errors=True)
    print("OK" if ok else "FAILED: a target was missed")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
