"""Child process of the crash test: open the demo CT, then edit without pause (a needle
nudged 0.5 mm caudally per action), printing "step N" once action N is done. The test
kills it (SIGKILL) at a random moment."""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("QT_API", "pyside6")


def main() -> int:
    from PySide6.QtWidgets import QApplication

    from app.controller import Controller
    from app.main_window import MainWindow
    from planning.demo.cache import demo_ct_path
    from planning.plan import Side, Trajectory

    app = QApplication(sys.argv[:1])
    window = MainWindow(Controller(auto_anatomy=False))
    window.show()
    window.open_path(demo_ct_path())
    deadline = time.monotonic() + 120
    while window.controller.volume is None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    doc = window.workspace.document
    step = 0
    while True:
        z = -380.0 - 0.5 * step
        needle = Trajectory("L2", Side.LEFT, (20.0, 40.0, z), (5.0, 5.0, z - 2.0))
        doc.edit(doc.plan.with_trajectory(needle), f"Nudge {step}")
        app.processEvents()
        print(f"step {step}", flush=True)
        step += 1
        time.sleep(0.005)


if __name__ == "__main__":
    sys.exit(main())
