"""The main window: four views (axial, 3-D, sagittal, coronal), menus, toolbar, status bar.

It wires widgets to the controller and shows the controller's outcomes (progress, errors,
warnings); it holds no state of its own beyond what is on screen.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QAction, QCloseEvent, QColor, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QProgressDialog,
    QSizePolicy,
    QStyle,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app.controller import Controller
from app.error_boundary import guarded, report_error
from app.gui_gc import hold_gui_thread_gc
from app.plan_session import PlanSession
from app.plan_workspace import PlanWorkspace
from planning.reslice import AXIAL, CORONAL, SAGITTAL
from planning.surface import BoneSurface
from planning.vocabulary import (
    DISCLAIMER,
    WINDOW_PRESETS,
    format_dicom_date,
    format_person_name,
)
from planning.volume import Volume
from widgets.fluoro_view import FluoroPanel
from widgets.mpr_view import MprView
from widgets.needle_view import NeedleView
from widgets.series_dialog import SeriesDialog
from widgets.view3d import View3D
from widgets.window_level import WindowLevelBar

VIEW_COLORS = {"Axial": QColor("#e35d5d"), "Sagittal": QColor("#e8c547"),
               "Coronal": QColor("#5cbf68")}
MOUSE_HINT = (
    "Left-click: move crosshair · Wheel / PgUp / PgDn: slices · Ctrl+wheel or right-drag: "
    "zoom · Middle or Shift+drag: pan · Ctrl+drag: window/level · 1/2: bone/soft tissue"
)
SHORT_HINT = (
    "Click: crosshair · Wheel: slices · Ctrl+wheel: zoom · Shift+drag: pan · "
    "Ctrl+drag: window · F1: help"
)
NIFTI_FILTER = "NIfTI volumes (*.nii *.nii.gz);;All files (*)"


def format_lps(point_lps: Any) -> str:
    """Cursor position for the status bar, in LPS millimetres."""
    x, y, z = (float(v) for v in point_lps)
    return f"x {x:7.1f}  y {y:7.1f}  z {z:7.1f} mm (LPS)"


def stylesheet() -> str:
    """The dark workstation theme, resources/style.qss.

    Looked up through the package's ``__path__`` because an editable install may present
    `resources` as a namespace package, which ``importlib.resources.files`` rejects on 3.11.
    """
    import resources

    for folder in resources.__path__:
        qss = Path(folder) / "style.qss"
        if qss.is_file():
            return qss.read_text(encoding="utf-8")
    return ""


def _framed(widget: QWidget) -> QFrame:
    frame = QFrame()
    frame.setObjectName("viewFrame")
    layout = QVBoxLayout(frame)
    layout.setContentsMargins(1, 1, 1, 1)
    layout.addWidget(widget)
    return frame


class MainWindow(QMainWindow):
    """VertebroPlan's workstation window."""

    def __init__(self, controller: Controller | None = None, *,
                 session: PlanSession | None = None) -> None:
        """``session``: the planning session this window shows (made here when not given,
        on ``controller`` when that is given)."""
        super().__init__()
        # cycles are collected on this (the GUI) thread while the window is open (`gui_gc`)
        self._release_gc = hold_gui_thread_gc()
        self.session = session if session is not None else PlanSession(controller, parent=self)
        self.controller = self.session.controller
        self.setWindowTitle("VertebroPlan")
        self.setStyleSheet(stylesheet())
        self._progress_dialog: QProgressDialog | None = None
        self._series_dialog: SeriesDialog | None = None

        self.axial_view = MprView(AXIAL, VIEW_COLORS["Axial"])
        self.sagittal_view = MprView(SAGITTAL, VIEW_COLORS["Sagittal"])
        self.coronal_view = MprView(CORONAL, VIEW_COLORS["Coronal"])
        self.mpr_views = (self.axial_view, self.sagittal_view, self.coronal_view)
        for view in self.mpr_views:
            view.set_linked_planes([(v.plane, v.color) for v in self.mpr_views if v is not view])
            view.setToolTip(MOUSE_HINT.replace(" · ", "\n"))
        self.view3d = View3D()
        self.needle_view = NeedleView()
        self.fluoro_panel = FluoroPanel()
        self.window_level_bar = WindowLevelBar()

        self._build_central()
        self._build_actions()
        self._build_status_bar()
        self._connect()
        self.workspace = PlanWorkspace(self, self.session)
        self.workspace.document.dirty_changed.connect(self._pin_retrieved_study)
        self.window_level_bar.set_window_level(*self.controller.window_level)
        for view in self.mpr_views:
            view.set_window_level(*self.controller.window_level)
        self.resize(1600, 960)

    # ---- construction -----------------------------------------------------------------
    def _build_central(self) -> None:
        self.banner = QLabel(f"⚠  {DISCLAIMER}")
        self.banner.setObjectName("researchBanner")
        self.patient_label = QLabel("No CT loaded")
        self.patient_label.setObjectName("patientLabel")
        # left-aligned: when the line is cut, the name and ID stay, the voxel sizes go
        self.patient_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        # a long study description is cut (full text in the tooltip), never widens the window
        self.patient_label.setSizePolicy(QSizePolicy.Policy.Ignored,
                                         QSizePolicy.Policy.Preferred)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.setSpacing(0)
        top.addWidget(self.banner)
        top.addWidget(self.patient_label, 1)

        grid_widget = QWidget()
        grid_widget.setObjectName("viewGrid")
        grid = QGridLayout(grid_widget)
        grid.setContentsMargins(2, 2, 2, 2)
        grid.setSpacing(2)
        # the three slices side by side on top; below, the 3D scene and the needle view
        # (two panes: along the needle and the probe's eye), which need the width
        grid.addWidget(_framed(self.axial_view), 0, 0)
        grid.addWidget(_framed(self.sagittal_view), 0, 1)
        grid.addWidget(_framed(self.coronal_view), 0, 2)
        grid.addWidget(_framed(self.view3d), 1, 0)
        # the needle view and the simulated fluoroscopy share the wide cell, as tabs
        self.bottom_tabs = QTabWidget()
        self.bottom_tabs.setObjectName("bottomTabs")
        self.bottom_tabs.setDocumentMode(True)
        self.bottom_tabs.addTab(self.needle_view, "Needle view")
        self.bottom_tabs.addTab(self.fluoro_panel, "Fluoroscopy (simulated DRR)")
        self.bottom_tabs.setTabToolTip(1, "Digitally reconstructed radiographs: AP and "
                                          "lateral, or the selected needle's C-arm working "
                                          "views, with the needles' shadows")
        grid.addWidget(_framed(self.bottom_tabs), 1, 1, 1, 2)
        for i in range(3):
            grid.setColumnStretch(i, 1)
        grid.setRowStretch(0, 5)
        grid.setRowStretch(1, 4)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(top)
        layout.addWidget(grid_widget, 1)
        self.setCentralWidget(central)

    def _action(self, text: str, slot: Any, shortcut: str | QKeySequence | None = None,
                icon: QStyle.StandardPixmap | None = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        action.setStatusTip(tip or text)
        action.triggered.connect(lambda _checked=False: slot())
        self.addAction(action)  # shortcuts work whichever view has the focus
        return action

    def _build_actions(self) -> None:
        sp = QStyle.StandardPixmap
        self.open_dicom_action = self._action(
            "Open DICOM folder…", self.open_dicom_folder, QKeySequence.StandardKey.Open,
            sp.SP_DirOpenIcon, "Open a folder of DICOM CT images")
        self.open_nifti_action = self._action(
            "Open NIfTI…", self.open_nifti_file, "Ctrl+Shift+O", sp.SP_FileIcon,
            "Open a NIfTI volume (.nii, .nii.gz)")
        self.open_pacs_action = self._action(
            "Open from PACS…", self.open_from_pacs, "Ctrl+Alt+O", sp.SP_DriveNetIcon,
            "Search a PACS (DICOM or DICOMweb) and retrieve a CT")
        self.cases_action = self._action(
            "Cases…", self.show_cases, "Ctrl+Shift+C", sp.SP_FileDialogDetailedView,
            "The CTs opened before, with their plans and their state")
        self.open_demo_action = self._action(
            "Open demo CT", self.open_demo, None, sp.SP_ComputerIcon,
            "Open the synthetic demo spine CT")
        quit_action = self._action("Quit", self.close, QKeySequence.StandardKey.Quit)
        self.preset_actions = []
        for i, name in enumerate(WINDOW_PRESETS, start=1):
            self.preset_actions.append(self._action(
                f"{name} window", lambda n=name: self.controller.apply_preset(n), str(i),
                tip=f"Display window: {name} (W {WINDOW_PRESETS[name][0]:.0f} / "
                    f"L {WINDOW_PRESETS[name][1]:.0f})"))
        self.reset_action = self._action(
            "Reset views", self.reset_views, "R", sp.SP_BrowserReload,
            "Fit the slices to the window and reset the 3D camera")
        help_action = self._action("Mouse and keyboard…", self.show_controls_help, "F1")
        about_action = self._action("About VertebroPlan…", self.show_about)

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        for a in (self.open_dicom_action, self.open_nifti_action, self.open_pacs_action,
                  self.open_demo_action, self.cases_action):
            file_menu.addAction(a)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        view_menu = menu.addMenu("&View")
        for a in self.preset_actions:
            view_menu.addAction(a)
        view_menu.addSeparator()
        view_menu.addAction(self.reset_action)
        help_menu = menu.addMenu("&Help")
        help_menu.addAction(help_action)
        help_menu.addAction(about_action)

        toolbar = self.toolbar = QToolBar("Main", self)
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for a in (self.open_dicom_action, self.open_nifti_action, self.open_demo_action):
            toolbar.addAction(a)
        toolbar.addSeparator()
        toolbar.addWidget(self.window_level_bar)
        toolbar.addSeparator()
        toolbar.addAction(self.reset_action)
        self.addToolBar(toolbar)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.hint_label = QLabel(SHORT_HINT)
        self.hint_label.setToolTip(MOUSE_HINT.replace(" · ", "\n"))
        self.hint_label.setObjectName("hintLabel")
        # the hint gives way (is cut) before the window would have to grow
        self.hint_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bar.addWidget(self.hint_label, 1)
        self.warning_label = QLabel("")
        self.warning_label.setObjectName("warningLabel")
        self.warning_label.hide()
        self.surface_bar = QProgressBar()
        self.surface_bar.setFixedWidth(180)
        self.surface_bar.setFormat("3D surface %p%")
        self.surface_bar.hide()
        self.cursor_label = QLabel("x       —  y       —  z       — mm (LPS)")
        self.cursor_label.setObjectName("cursorLabel")
        self.cursor_label.setToolTip("Position under the mouse, patient LPS millimetres "
                                     "(x → patient left, y → posterior, z → head)")
        self.hu_label = QLabel("HU —")
        self.hu_label.setObjectName("huLabel")
        self.hu_label.setMinimumWidth(90)
        self.hu_label.setToolTip("CT number under the mouse (Hounsfield units)")
        for w in (self.warning_label, self.surface_bar, self.cursor_label, self.hu_label):
            bar.addPermanentWidget(w)

    def _connect(self) -> None:
        c = self.controller
        for view in self.mpr_views:
            view.crosshair_moved.connect(c.set_crosshair)
            view.window_level_requested.connect(c.set_window_level)
            view.cursor_moved.connect(self.show_cursor)
        self.window_level_bar.window_level_requested.connect(c.set_window_level)
        c.crosshair_changed.connect(self._on_crosshair_changed)
        c.window_level_changed.connect(self._on_window_level_changed)
        c.volume_loaded.connect(self._on_volume_loaded)
        c.surface_started.connect(self._on_surface_started)
        c.surface_progress.connect(self._on_surface_progress)
        c.surface_ready.connect(self._on_surface_ready)
        c.load_started.connect(self._on_load_started)
        c.load_progress.connect(self._on_load_progress)
        c.load_finished.connect(self._on_load_finished)
        c.series_found.connect(self._on_series_found)
        c.error_occurred.connect(self._on_error)
        c.status_message.connect(lambda text: self.statusBar().showMessage(text, 15000))

    # ---- user actions ----------------------------------------------------------------
    @guarded("opening a DICOM folder")
    def open_dicom_folder(self) -> None:
        if self.workspace.files.confirm_discard("open another CT"):
            self._open_local(QFileDialog.getExistingDirectory(self, "Open DICOM folder"),
                             self.controller.open_dicom_folder)

    @guarded("opening a NIfTI file")
    def open_nifti_file(self) -> None:
        if self.workspace.files.confirm_discard("open another CT"):
            path, _ = QFileDialog.getOpenFileName(self, "Open NIfTI volume", "", NIFTI_FILTER)
            self._open_local(path, self.controller.open_nifti)

    def _open_local(self, path: str, open_it: Callable[[str], None]) -> None:
        """Open what the user picked on this computer (nothing when the dialog was
        cancelled): no PACS to send its plan back to."""
        if path:
            self.workspace.exports.source_node = None
            open_it(path)

    @guarded("opening the PACS browser")
    def open_from_pacs(self) -> None:
        if not self.workspace.files.confirm_discard("open another CT"):
            return
        from app.pacs_browser import PacsBrowser

        if getattr(self, "pacs_browser", None) is None:
            self.pacs_browser = PacsBrowser(
                self, self.workspace.settings,
                lambda folder, series, node: self.open_path(folder, series, source_node=node))
        self.pacs_browser.show()

    def show_cases(self) -> None:
        from app.case_tracking import show_case_list

        self.case_list_dialog = show_case_list(self, self.workspace.cases, self.open_case)

    def open_case(self, row: Any) -> str | None:
        """Reopen a case of the case list with its latest plan; or say why not."""
        record = row.record
        if record.source != "demo" and not Path(record.ct_path).exists():
            where = f" (retrieve it again with File ▸ Open from PACS from {record.source_node})" \
                if record.source == "pacs" else ""
            return f"The CT is no longer at {record.ct_path}{where}."
        if not self.workspace.files.confirm_discard("open another case"):
            return "Kept the current plan."
        if row.plan_path and Path(row.plan_path).exists():
            self.workspace.files.open_plan_after_load(row.plan_path)
        if record.source == "demo":
            self.workspace.exports.source_node = None
            self.controller.open_demo()
        else:
            self.open_path(record.ct_path, record.series_uid or None,
                           source_node=record.source_node or None)
        return None

    def _pin_retrieved_study(self, dirty: bool) -> None:
        """A CT in the study cache stays there while its plan is unsaved, even across a
        crash (the pin is a file in the cache; saving removes it): the one protection that
        eviction respects."""
        volume = self.controller.volume
        if volume is None or not volume.study_uid:
            return
        from planning.pacs.cache import StudyCache
        from planning.pacs.node import PacsError

        cache = StudyCache()
        try:
            if not cache.study_dir(volume.study_uid).is_dir():
                return  # not a CT of the cache
        except PacsError:
            return  # a UID the cache could not hold
        try:
            if dirty:
                cache.pin(volume.study_uid)
            else:
                cache.unpin(volume.study_uid)
        except OSError as exc:  # a read-only cache: eviction cannot see the unsaved plan
            self.statusBar().showMessage(f"Study cache: {exc}", 10000)

    def open_demo(self) -> None:
        if self.workspace.files.confirm_discard("open the demo CT"):
            self.controller.open_demo()

    def reset_views(self) -> None:
        for view in self.mpr_views:
            view.reset_view()
        self.view3d.reset_camera()

    def show_controls_help(self) -> None:
        QMessageBox.information(self, "Mouse and keyboard", MOUSE_HINT.replace(" · ", "\n"))

    def show_about(self) -> None:
        QMessageBox.about(
            self, "About VertebroPlan",
            "<b>VertebroPlan</b> — vertebroplasty planning workstation.<br><br>"
            f"<b>{DISCLAIMER}.</b><br>Positions are DICOM patient coordinates (LPS) "
            "in millimetres.",
        )

    # ---- controller outcomes ---------------------------------------------------------
    @Slot(object, object)
    def show_cursor(self, point_lps: Any, hu: Any) -> None:
        if point_lps is None:
            self.hu_label.setText("HU —")
            return
        self.cursor_label.setText(format_lps(point_lps))
        self.hu_label.setText("outside" if hu is None else f"HU {hu:.0f}")

    @Slot(object)
    def _on_crosshair_changed(self, point_lps: Any) -> None:
        for view in self.mpr_views:
            view.set_crosshair(point_lps)
        self.view3d.set_crosshair(point_lps)

    @Slot(float, float)
    def _on_window_level_changed(self, window: float, level: float) -> None:
        for view in self.mpr_views:
            view.set_window_level(window, level)
        self.window_level_bar.set_window_level(window, level)

    @Slot(object)
    def _on_volume_loaded(self, volume: Volume) -> None:
        for view in self.mpr_views:
            view.set_volume(volume)
        self.view3d.clear_surface("Waiting for the bone surface…")
        self.patient_label.setText(self._describe(volume))
        self.patient_label.setToolTip(self._describe(volume))
        self.warning_label.setVisible(bool(volume.warnings))
        if volume.warnings:
            self.warning_label.setText(f"⚠ {len(volume.warnings)} notice(s) about this CT")
            self.warning_label.setToolTip("\n".join(volume.warnings))

    @staticmethod
    def _describe(volume: Volume) -> str:
        p = volume.patient
        parts = [format_person_name(p.name) or "Anonymous"]
        if p.patient_id:
            parts.append(f"ID {p.patient_id}")
        if p.study_date:
            parts.append(format_dicom_date(p.study_date))
        if p.series_description:
            parts.append(p.series_description)
        ni, nj, nk = volume.size
        sx, sy, sz = volume.spacing_mm
        parts.append(f"{ni}×{nj}×{nk} voxels, {sx:.2f}×{sy:.2f}×{sz:.2f} mm")
        return "   ·   ".join(parts)

    @Slot()
    def _on_surface_started(self) -> None:
        self.surface_bar.setRange(0, 0)
        self.surface_bar.show()
        self.view3d.set_status("Building the bone surface…")

    @Slot(int, int, str)
    def _on_surface_progress(self, done: int, total: int, _message: str) -> None:
        self.surface_bar.setRange(0, max(total, 1))
        self.surface_bar.setValue(done)

    @Slot(object)
    def _on_surface_ready(self, surface: BoneSurface) -> None:
        self.surface_bar.hide()
        self.view3d.show_surface(surface.vertices_lps, surface.faces, surface.normals_lps)

    @Slot(str)
    def _on_load_started(self, label: str) -> None:
        self._close_progress_dialog()
        dialog = QProgressDialog(label, "Cancel", 0, 0, self)
        dialog.setObjectName("loadProgress")
        dialog.setWindowTitle("VertebroPlan")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(300)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.setMinimumWidth(420)
        dialog.canceled.connect(self.controller.cancel_loading)
        self._progress_dialog = dialog

    @Slot(int, int, str)
    def _on_load_progress(self, done: int, total: int, message: str) -> None:
        dialog = self._progress_dialog
        if dialog is None:
            return
        if message:
            dialog.setLabelText(message)
        dialog.setMaximum(max(total, 1))
        # a modal progress dialog runs the event loop in setValue: the load may finish and
        # close the dialog right there, so nothing may touch it afterwards
        dialog.setValue(min(done, max(total, 1)))

    @Slot()
    def _on_load_finished(self) -> None:
        self._close_progress_dialog()

    def _close_progress_dialog(self) -> None:
        if self._progress_dialog is not None:
            self._progress_dialog.canceled.disconnect()
            self._progress_dialog.close()
            self._progress_dialog.deleteLater()
            self._progress_dialog = None

    @Slot(object)
    def _on_series_found(self, scan: Any) -> None:
        dialog = SeriesDialog(scan.series, len(getattr(scan, "skipped", [])), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._open_chosen_series(dialog))
        self._series_dialog = dialog
        dialog.open()

    def _open_chosen_series(self, dialog: SeriesDialog) -> None:
        info = dialog.selected_series()
        if info is not None:
            self.controller.open_series(info)

    @Slot(str, object)
    def _on_error(self, action: str, exc: Any) -> None:
        report_error(self, action, exc)

    def open_path(self, path: str | Path, series_uid: str | None = None, *,
                  source_node: str | None = None) -> None:
        """Open a file or folder given on the command line, or retrieved from
        ``source_node`` (a PACS, which then also receives the plan by default)."""
        self.workspace.exports.source_node = source_node
        self.controller.open_path(path, series_uid)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.workspace.files.confirm_discard("quit"):
            event.ignore()
            return
        self.workspace.closing()
        self.controller.shutdown()
        self.view3d.close_view()
        super().closeEvent(event)
        self._release_gc()
