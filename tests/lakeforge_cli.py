"""Running the installed `lakeforge` command as a user would: its own process, no terminal, this checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lakeforge.template import TEMPLATE_ENV

LAKEFORGE = str(Path(sys.executable).with_name("lakeforge"))


def run_lakeforge(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`lakeforge ARGS`, rendering this checkout unless `env` names another template."""
    base = {k: v for k, v in os.environ.items() if k != TEMPLATE_ENV}
    return subprocess.run(
        [LAKEFORGE, *map(str, args)],
        cwd=cwd,
        env={**base, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
