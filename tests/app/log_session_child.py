"""Child process of the log test: a whole working session on the demo CT opened from a
folder whose name carries the patient's name and ID (as PACS exports often do): load,
anatomy, propose, save, export, a failed open and an unexpected error; then a clean quit.
argv: the CT folder, the output folder."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_API", "pyside6")


def main() -> int:
    from PySide6.QtWidgets import QApplication

    from app.controller import Controller
    from app.error_boundary import report_error
    from app.logs import setup_logging
    from app.main_window import MainWindow
    from planning.anatomy.from_demo import anatomy_from_demo_truth
    from planning.demo import load_demo_truth

    folder, out = Path(sys.argv[1]), Path(sys.argv[2])
    setup_logging(to_stderr=False)
    app = QApplication(sys.argv[:1])
    window = MainWindow(Controller(auto_anatomy=False))
    ws = window.workspace
    ws.files.confirm_discard = lambda _doing: True  # type: ignore[method-assign]
    window.show()

    def wait(condition, what: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}")
            app.processEvents()
            time.sleep(0.02)

    window.open_path(folder)
    wait(lambda: window.controller.volume is not None, "the CT")
    window.controller.set_anatomy(anatomy_from_demo_truth(load_demo_truth(folder)))
    ws.propose(["L2"], "11G")
    wait(lambda: len(ws.document.plan.trajectories) == 2, "the proposal")
    ws.files.save(out / "plan.vplan.json")
    ws.exports.export(sr_path=out / "plan-sr.dcm")
    wait(lambda: not window.controller.is_busy_with_task and ws.exports.last_export is not None,
         "the export")
    ws.files.open_plan(folder / "VP-DEMO-0001 plan.vplan.json")  # not there: a domain error
    try:
        raise RuntimeError(f"could not read {folder / 'IM0001.dcm'} of VertebroPlan^Demo")
    except RuntimeError as exc:  # as an unexpected bug's traceback would name the file
        report_error(window, "reading the series", exc)
    app.processEvents()
    window.close()
    app.processEvents()
    print("session done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
