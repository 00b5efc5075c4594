"""Start the desktop application (called by `app.cli`)."""

from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("QT_API", "pyside6")  # before pyvistaqt is imported


def run_gui(
    path: str | None, series_uid: str | None = None, screenshot: str | None = None,
    plan: str | None = None, *, source_node: str | None = None,
) -> int:
    """Create the application and main window, open ``path`` (or the demo CT), run.

    With ``screenshot``, the window is saved to that PNG once the 3D spine is first drawn
    and the application quits — for smoke tests and the start-up benchmark, which reads the
    "first 3D render" line printed then. Returns the event loop's exit code.
    """
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app import __version__
    from app.error_boundary import install_excepthook
    from app.logs import setup_logging
    from app.main_window import MainWindow
    from app.plan_session import PlanSession

    log_file = setup_logging()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("VertebroPlan")
    app.setOrganizationName("VertebroPlan")
    app.setStyle("Fusion")
    app.setDesktopFileName("vertebroplan")
    _set_icon(app)
    # the composition root: one planning session, and the window that shows it
    window = MainWindow(session=PlanSession())
    logging.getLogger("vertebroplan").info(
        "VertebroPlan %s started; log file %s", __version__, log_file or "none (not writable)")
    install_excepthook(window)
    window.show()
    if screenshot is not None:
        exit_code = {"value": 0}

        def save_and_quit() -> None:
            if window.grab().save(screenshot):
                print(f"Screenshot saved to {screenshot}", flush=True)
            else:
                print(f"vertebroplan: error: cannot write '{screenshot}'", file=sys.stderr)
                exit_code["value"] = 1
            app.exit(exit_code["value"])

        def capture() -> None:
            print("first 3D render", flush=True)
            QTimer.singleShot(300, save_and_quit)

        def fail(_action: str, exc: object) -> None:
            # nobody is there to close the error dialog: say it once and stop
            print(f"vertebroplan: error: {exc}", file=sys.stderr, flush=True)
            app.exit(1)

        window.view3d.surface_shown.connect(capture)
        window.controller.error_occurred.connect(fail)
    def start() -> None:
        if screenshot is None and window.workspace.files.offer_recovery():
            return  # the recovered plan's CT is being opened
        if path is not None:
            if plan is not None:
                window.workspace.files.open_plan_after_load(plan)
            window.open_path(path, series_uid, source_node=source_node)
        else:
            window.controller.open_demo()

    window.workspace.restore_layout()
    QTimer.singleShot(0, start)
    code = int(app.exec())
    window.controller.shutdown()  # cancel and wait for background work before teardown
    return code


def _set_icon(app: object) -> None:
    """The window icon (resources/vertebroplan.png), looked up as `stylesheet()` does."""
    from PySide6.QtGui import QIcon

    import resources

    for folder in resources.__path__:
        icon = os.path.join(folder, "vertebroplan.png")
        if os.path.isfile(icon):
            app.setWindowIcon(QIcon(icon))  # type: ignore[attr-defined]
            return
