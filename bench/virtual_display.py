"""The virtual X server the GUI benchmarks launch the app on (Xvfb, software GL): started
before the clock runs and stopped however the benchmark ends."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

SCREEN = "1600x1000x24"
STARTUP_S = 1.0  # Xvfb accepts clients only after a moment


def skipped_without_xvfb(title: str) -> bool:
    """True, after printing that the benchmark ``title`` is skipped, when Xvfb is not
    installed."""
    if shutil.which("Xvfb") is None:
        print(f"\n## {title}: skipped (Xvfb not installed)")
        return True
    return False


@contextmanager
def virtual_display(display: str) -> Iterator[str]:
    """Xvfb serving ``display`` (":97") for the ``with`` block; yields ``display``."""
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", SCREEN, "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(STARTUP_S)
        yield display
    finally:
        xvfb.terminate()
        xvfb.wait()
