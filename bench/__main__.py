"""`make bench`: VertebroPlan's speed figures, each beside its reference, in one run.

Prints a table per benchmark. Targets come from the issues; a figure that misses its target
is marked, but the run still completes so every figure is reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable
from importlib import import_module

BENCHES = {
    "load": "bench.bench_load",
    "checks": "bench.bench_checks",
    "drr": "bench.bench_drr",
    "anatomy": "bench.bench_anatomy_ct",
    "autoplan": "bench.bench_autoplan",
    "pipeline": "bench.bench_pipeline",
    "pacs": "bench.bench_pacs",
    "batch": "bench.bench_batch",
    "accuracy": "bench.accuracy",
    "memory": "bench.bench_memory",
    "gui-start": "bench.bench_gui_start",
    "gui-latency": "bench.bench_gui_latency",
}


def _runner(name: str) -> Callable[[], object]:
    """The ``run`` of a benchmark module, imported only when it is asked for."""
    return import_module(BENCHES[name]).run  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHES)}")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)} (known: {', '.join(BENCHES)})")
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    for name in args.names or list(BENCHES):
        _runner(name)()
    return 0


if __name__ == "__main__":
    sys.exit(main())
