"""lakeforge: generate a Databricks MLOps project whose whole loop runs offline, and put it on Databricks."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lakeforge")
except PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0.0.0+unknown"
