"""Python's cyclic garbage collector, run on the GUI thread only while a window is open.

Why: the window's background work (loading, the anatomy, the level assessment, the export)
runs in pool threads that allocate a great deal, and Python collects reference cycles in
whichever thread crosses the collector's threshold. A Qt or VTK object caught in a cycle (a
dialog and the closure one of its signals holds, a render helper) then has its C++
destructor run on a pool thread, while the GUI thread may be painting with it or delivering
its events: Qt objects must die in the thread they live in. A window test crashed that way
once in about ten runs (a segmentation fault in the GUI thread's event loop while two pool
threads computed the leakage flags). So while a window is open, automatic collection is
off and a timer on the GUI thread collects each generation when its count passes the
threshold, as automatic collection would have (pyqtgraph's `GarbageCollector` does the
same for the same reason). When the last window closes, automatic collection is back.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, QObject, QTimer

INTERVAL_MS = 200  # a generation-0 collection costs well under a millisecond


class GuiThreadCollector(QObject):
    """Collects cycles on the GUI thread while held (`hold`); see the module docstring."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._holders = 0
        self._timer = QTimer(self)
        self._timer.setInterval(INTERVAL_MS)
        self._timer.timeout.connect(self.step)

    @property
    def active(self) -> bool:
        return self._holders > 0

    def hold(self) -> Callable[[], None]:
        """Take collection onto the GUI thread; returns the function that lets it go
        (calling it more than once is harmless)."""
        if self._holders == 0:
            gc.disable()
            self._timer.start()
        self._holders += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._holders -= 1
            if self._holders == 0:
                self._timer.stop()
                gc.enable()

        return release

    def step(self) -> None:
        """Collect the youngest generation if anything was allocated since the last tick,
        and the older ones when their counts pass their thresholds.

        Why every tick and not at generation 0's threshold: the count is allocations less
        frees, and a pool thread that builds and drops many objects between two ticks
        leaves it near zero, with its cycles uncollected (automatic collection would have
        crossed the threshold on the way). A young collection costs well under 1 ms."""
        counts, limits = gc.get_count(), gc.get_threshold()
        if counts[0] > 0:
            gc.collect(0)
            if counts[1] >= limits[1]:
                gc.collect(1)
                if counts[2] >= limits[2]:
                    gc.collect(2)


_COLLECTOR: GuiThreadCollector | None = None


def hold_gui_thread_gc() -> Callable[[], None]:
    """Collect cycles on the GUI thread until the returned function is called (a window
    calls this when it is made and the function when it closes)."""
    global _COLLECTOR
    app = QCoreApplication.instance()
    if _COLLECTOR is None or _COLLECTOR.parent() is not app:
        _COLLECTOR = GuiThreadCollector(app)
    return _COLLECTOR.hold()
