"""What the plan workspace and the training session may use of the main window.

Why: the workspace and the training session used to receive the `MainWindow` itself and
reach into whatever it held, so ``main_window`` → ``plan_workspace`` → ``training_session``
→ ``main_window`` was an import circle and any attribute of the window was fair game. They
now see the window through this protocol: the views they draw into, the status bar and the
Qt main-window calls for docks and menus, and nothing else. `MainWindow` satisfies it; no
module below ``main_window`` imports it (an import-linter contract keeps it so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from PySide6.QtGui import QAction, QKeySequence
    from PySide6.QtWidgets import QStatusBar, QStyle, QTabWidget, QToolBar

    from app.controller import Controller
    from widgets.fluoro_view import FluoroPanel
    from widgets.mpr_view import MprView
    from widgets.needle_view import NeedleView
    from widgets.view3d import View3D


class Shell(Protocol):
    """The main window as the plan workspace and the training session see it.

    The QMainWindow calls they make (docks, menus, geometry, title) are Qt's own and are
    not repeated here; the attributes below are the window's own parts.
    """

    controller: Controller
    mpr_views: tuple[MprView, MprView, MprView]
    axial_view: MprView
    view3d: View3D
    needle_view: NeedleView
    fluoro_panel: FluoroPanel
    bottom_tabs: QTabWidget
    toolbar: QToolBar

    def statusBar(self) -> QStatusBar:
        """The window's status bar (Qt's name)."""

    def open_path(self, path: str | Path, series_uid: str | None = None, *,
                  source_node: str | None = None) -> None:
        """Open a CT (folder, DICOM file or NIfTI) as File ▸ Open does."""

    def _action(self, text: str, slot: Any, shortcut: str | QKeySequence | None = None,
                icon: QStyle.StandardPixmap | None = None, tip: str = "") -> QAction:
        """A window-wide action (its shortcut works whichever view has the focus)."""
