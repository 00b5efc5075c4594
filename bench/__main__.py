"""`make bench`: VertebroPlan's speed figures, each beside its reference, in one run.

Prints a table per benchmark. Targets come from the issues; a figure that misses its target
is marked, but the run still completes so every figure is reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

from bench.bench_checks import run as run_checks
from bench.bench_gui_start import run as run_gui_start
from bench.bench_load import run as run_load

BENCHES = {"load": run_load, "checks": run_checks, "gui-start": run_gui_start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help="benchmarks to run")
    args = parser.parse_args(argv)
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    for name in args.names or list(BENCHES):
        BENCHES[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
