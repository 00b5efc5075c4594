"""Child process of the autosave test: open the demo CT, place a needle, then wait to be
killed. Prints the plan it made (JSON) once its recovery file is on disk."""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("QT_API", "pyside6")


def open_demo_window():
    """A window on the demo CT, loaded; shared with the crash test's child."""
    from PySide6.QtWidgets import QApplication

    from app.controller import Controller
    from app.main_window import MainWindow
    from planning.demo.cache import demo_ct_path

    app = QApplication(sys.argv[:1])
    window = MainWindow(Controller(auto_anatomy=False))
    window.show()
    window.open_path(demo_ct_path())
    deadline = time.monotonic() + 120
    while window.controller.volume is None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    return app, window


def main() -> int:
    from planning.interop.plan_file import plan_to_dict

    app, window = open_demo_window()
    deadline = time.monotonic() + 120
    ed = window.workspace.editor
    ed.start_placing("L2", "left")
    ed.point_placed([20.0, 40.0, -390.0])
    ed.point_placed([5.0, 5.0, -392.0])
    recovery = window.workspace.files.autosave.file
    while not recovery.exists() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    print(json.dumps(plan_to_dict(window.workspace.document.plan)), flush=True)
    while True:  # killed by the test (SIGKILL): no clean exit, no cleanup
        app.processEvents()
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
