"""lakeforge's own test suite (a package so that `python -m tests.fake_workspace` runs the fake workspace)."""
