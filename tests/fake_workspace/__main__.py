"""`python -m tests.fake_workspace --port 0`: run the fake Databricks workspace until terminated."""

import sys

from .server import main

sys.exit(main())
