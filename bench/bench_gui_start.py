"""Time from launching `vertebroplan` to the first rendered 3D spine (demo CT, cached).

A virtual X server is started first (not timed); then the app is launched with
``--screenshot`` and the clock stops when it prints "first 3D render". The first run may
include generating the demo CT into the cache; it is reported separately.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.virtual_display import skipped_without_xvfb, virtual_display

REPEATS = 3


def _launch(display: str, png: Path) -> float:
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--screenshot", str(png)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "first 3D render" in line:
            elapsed = time.perf_counter() - t
            break
    else:
        proc.wait()
        raise RuntimeError("the app exited without rendering the 3D view")
    proc.wait(timeout=60)
    return elapsed


def run() -> dict[str, float]:
    if skipped_without_xvfb("GUI start"):
        return {}
    with virtual_display(":97") as display, tempfile.TemporaryDirectory() as tmp:
        first = _launch(display, Path(tmp) / "first.png")
        times = [_launch(display, Path(tmp) / f"run{n}.png") for n in range(REPEATS)]
    median = statistics.median(times)
    print("\n## Launch → first rendered 3D spine (demo CT 320 × 320 × 293, Xvfb, no GPU)")
    print("| run | seconds |")
    print("|---|---|")
    print(f"| first (may generate the demo CT into the cache) | {first:.1f} |")
    spread = f"min {min(times):.1f}, max {max(times):.1f}"
    print(f"| cached, median of {REPEATS} | {median:.1f} ({spread}) |")
    return {"first_s": first, "cached_median_s": median}
