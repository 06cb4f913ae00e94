"""`python -m tools.bench`: see `tools/bench/cli.py`."""

from tools.bench.cli import main

main()
