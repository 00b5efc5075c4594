"""Runs inside a virtual X display (started by `bench_gui_latency`): drag a needle's tip
across the axial view of the demo CT and time each mouse move to its redrawn frame."""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("QT_API", "pyside6")

MOVES = 200


def _paint_counter_class():  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QEvent, QObject

    class PaintCounter(QObject):
        """Counts the paint events of the widget it filters (the axial view)."""

        def __init__(self) -> None:
            super().__init__()
            self.counts = {"n": 0}

        def eventFilter(self, _obj, event):  # type: ignore[no-untyped-def]
            if event.type() == QEvent.Type.Paint:
                self.counts["n"] += 1
            return False

    return PaintCounter


def main() -> int:
    import numpy as np
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from app.controller import Controller
    from app.main_window import MainWindow
    from bench.bench_checks import _resampled
    from planning.anatomy.from_demo import anatomy_from_demo_truth
    from planning.plan import Side, Trajectory

    PaintCounter = _paint_counter_class()  # noqa: N806
    app = QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    volume, truth = _resampled()  # the demo spine on a 512 × 512 × 300 grid
    window = MainWindow(Controller(auto_anatomy=False))
    window.resize(1600, 960)
    window.show()
    QTest.qWaitForWindowExposed(window)
    window.controller.set_volume(volume)
    window.controller.set_anatomy(anatomy_from_demo_truth(truth))
    while window.controller.surface is None or not window.view3d.has_surface:
        app.processEvents()
        time.sleep(0.01)
    ws = window.workspace
    plan = ws.document.plan
    for level in ("L1", "L2", "L3", "L4"):  # a realistic plan: eight needles on screen
        for side in (Side.LEFT, Side.RIGHT):
            p = truth.level(level).pedicle(side)
            reach = float(np.linalg.norm(p.anterior_cortex_lps - p.entry_lps))
            plan = plan.with_trajectory(Trajectory(level, side, tuple(p.entry_lps),
                                                   tuple(p.entry_lps + 0.85 * reach
                                                         * p.direction_lps)))
    ws.document.edit(plan, "Place")
    t = plan.get("L2", Side.LEFT)
    ws.select_needle("L2", Side.LEFT)
    window.controller.set_crosshair(t.target)
    for _ in range(20):
        app.processEvents()
    view = window.axial_view
    start = view.lps_to_widget(t.target).toPoint()
    counter = PaintCounter()
    view.installEventFilter(counter)
    paints = counter.counts
    QTest.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    times = []
    missed = 0
    for n in range(MOVES):  # 1–20 px towards the canal and back: every move is a change
        dx = 1 + (n % 20)
        before = paints["n"]
        t0 = time.perf_counter()
        QTest.mouseMove(view, QPoint(start.x() + dx, start.y() - dx // 2))
        app.processEvents()  # checks, every view's repaint, the 3D render
        # (bounded: PySide6 6.x on Python 3.11 drops a reference to None per idle call)
        for _ in range(50):
            if paints["n"] != before:
                break
            app.processEvents()
        else:
            missed += 1
        times.append(time.perf_counter() - t0)
    QTest.mouseRelease(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    ws.document.undo_stack.setClean()
    print(json.dumps({"times_s": times, "needles": len(plan.trajectories), "missed": missed}),
          flush=True)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
