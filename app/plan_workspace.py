"""The planning half of the main window: docks, plan actions, and the flow of a plan edit.

Every plan edit takes one path: a widget emits an intent → `PlanEditor` pushes a command on
the `PlanDocument`'s undo stack → the document emits ``changed`` → the editor re-checks →
every view, the levels panel, the details and the needle view redraw from the same values;
the recovery file follows within a moment. Nothing here computes anatomy or checks.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QColor, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStyle,
    QTextBrowser,
    QToolButton,
    QWidget,
)

from app.assessment_runner import AssessmentRunner
from app.autosave import Autosave, Recovery
from app.case_tracking import CaseTracker
from app.error_boundary import error_boundary
from app.fluoroscopy import Fluoroscopy
from app.plan_document import PlanDocument
from app.plan_editor import PlanEditor
from app.settings import (
    carm_convention,
    carm_distances,
    cement_fill_range,
    default_gauge,
    limits,
    open_settings,
    store_cement_fill_range,
    store_limits,
    store_pacs,
)
from app.training_session import TrainingSession
from planning.anatomy.model import Anatomy, level_at, names_uncertain
from planning.anatomy_source import is_demo_ct
from planning.carm import working_views
from planning.checks import CheckResult
from planning.errors import VertebroPlanError
from planning.interop.any_plan import is_plan_file
from planning.interop.plan_file import SUFFIX, FrameMismatchError, check_frame
from planning.mask_reslice import mask_mesh
from planning.plan import Plan, Side, level_index
from planning.vocabulary import CANAL_COLOR, CEMENT_COLOR, DISCLAIMER, HIGHLIGHT_COLOR, VESSEL_COLOR
from planning.volume import Volume
from widgets.check_details import CheckDetailsPanel
from widgets.levels_panel import LevelRow, LevelsPanel
from widgets.mpr_overlays import Outline
from widgets.plan_display import NeedleDisplay
from widgets.settings_dialog import SettingsDialog

if TYPE_CHECKING:
    from app.main_window import MainWindow

PLAN_FILTER = f"VertebroPlan plans (*{SUFFIX});;All files (*)"
log = logging.getLogger("vertebroplan")
OPEN_PLAN_FILTER = (f"Plans (*{SUFFIX} *.dcm *.mrk.json);;VertebroPlan plans (*{SUFFIX});;"
                    "DICOM SR (*.dcm);;3D Slicer markups (*.mrk.json);;All files (*)")
SEGMENTATION_FILTER = ("Segmentations (*.nii *.nii.gz *.dcm);;NIfTI label map (*.nii *.nii.gz);;"
                       "DICOM SEG (*.dcm);;All files (*)")
LABEL_TABLES = {"TotalSegmentator (total task)": "totalsegmentator",
                "VerSe (1–25 = C1–L6, 26 = sacrum)": "verse"}
EXPORT_KINDS = {  # kind: (suffix, file filter, what it is)
    "pdf": (".pdf", "PDF report (*.pdf)", "PDF report"),
    "sr": (".dcm", "DICOM SR (*.dcm)", "DICOM SR"),
    "seg": (".dcm", "DICOM SEG (*.dcm)", "DICOM segmentation"),
    "markups": (".mrk.json", "3D Slicer markups (*.mrk.json)", "Slicer markups"),
}
AUTOSAVE_DELAY_MS = 250
LIVE_3D_MAX_S = 0.04  # 3D frames slower than this do not follow every move of a drag
DRAG_3D_PAUSE_MS = 150  # a drag writes its recovery file at most four times a second
LOW_CONFIDENCE = 0.5

HELP_HTML = """
<h3>Planning a level</h3>
<ol>
<li><b>Open a CT</b> (File menu). The spine is found automatically: levels appear in the
<i>Levels</i> panel, the canal is outlined in <span style='color:#4fc3f7'>blue</span>.</li>
<li><b>Check the level names</b> against the ribs and the sacrum. If they are off by one,
use <b>Shift ↑ / ↓</b>.</li>
<li><b>Propose</b> (Ctrl+P) plans both pedicles of the selected levels, or <b>Place
left / right</b> (Shift+L / Shift+R) and click the <b>entry</b>, then the <b>target</b>,
in any slice view.</li>
<li><b>Adjust</b>: drag the entry ring, the tip dot or the shaft in any slice view or in
3D. The status updates while you drag.</li>
<li><b>Save</b> (Ctrl+S). Every edit is also kept in a recovery file.</li>
</ol>
<h3>Status colours</h3>
<p><span style='color:#3ec46d'>● Safe</span>: clear of the canal by at least the caution
margin, tip in the body.<br>
<span style='color:#f2b630'>● Caution</span>: close to the canal or a wall, or the tip is
not where it should be.<br>
<span style='color:#ef4b4b'>● Unsafe</span>: enters the canal, breaches a medial wall or
the anterior cortex, comes within 3 mm of a contrast-filled vessel (drawn in pink), or the CT
shows no bone around its tip.</p>
<p>Breach grades follow Gertzbein–Robbins: A none, B &lt; 2 mm, C 2–4 mm, D 4–6 mm,
E &gt; 6 mm.</p>
<h3>Keys</h3>
<p>Ctrl+Z / Ctrl+Shift+Z undo / redo · Del delete the selected needle · Esc cancel
placing · F1 mouse and keyboard.</p>
""" + f"<p><b>{DISCLAIMER}.</b></p>\n"


class TaskIndicator(QWidget):
    """A status-bar progress bar with a Cancel button for background work."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("")
        self.label.setMaximumWidth(320)  # long stage names must not widen the window
        self.bar = QProgressBar()
        self.bar.setFixedWidth(140)
        self.bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("taskCancel")
        for w in (self.label, self.bar, self.cancel_button):
            layout.addWidget(w)
        self._cancel: Any = None
        self.cancel_button.clicked.connect(lambda: self._cancel and self._cancel())
        self.hide()

    def start(self, text: str, cancel: Any) -> None:
        self.label.setText(text)
        self.bar.setRange(0, 0)
        self._cancel = cancel
        self.show()

    def progress(self, done: int, total: int, message: str) -> None:
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(min(done, max(total, 1)))
        if message:
            self.label.setText(message)

    def finish(self) -> None:
        self._cancel = None
        self.hide()


VESSEL_SHOW_MM = 10.0  # a needle this close to a contrast-filled vessel shows the vessel
VESSEL_BOX_MM = 30.0  # the part of the vessel shown: around the needle, this far


class PlanWorkspace(QObject):
    """Plan document, editor, autosave, docks and actions of one main window."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.source_node: str | None = None  # the PACS the open CT was retrieved from
        self.cases = CaseTracker(lambda text: window.statusBar().showMessage(text, 20000))
        self.controller = window.controller
        self.settings = open_settings()
        self.document = PlanDocument(self)
        self.editor = PlanEditor(self.controller, self.document, self)
        self.editor.gauge = default_gauge(self.settings)
        self.controller.set_limits(limits(self.settings))
        self.autosave = Autosave()
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setSingleShot(True)
        self._autosave_timer.setInterval(AUTOSAVE_DELAY_MS)
        self._autosave_timer.timeout.connect(self.write_recovery)
        self._pending_plan: tuple[Plan, Path | None, bool] | None = None
        self._extra_levels: set[str] = set()
        self._plan_after_load: Path | None = None
        self.last_export: Any = None
        self._highlight: tuple[str, Any] | None = None  # level, mesh
        self._pending_3d: list[NeedleDisplay] = []
        self._3d_timer = QTimer(self)
        self._3d_timer.setSingleShot(True)
        self._3d_timer.setInterval(DRAG_3D_PAUSE_MS)
        self._3d_timer.timeout.connect(self._catch_up)

        self.levels_panel = LevelsPanel()
        self.levels_panel.set_gauge(self.editor.gauge)
        self.details_panel = CheckDetailsPanel()
        self.needle_view = window.needle_view
        self.fluoro = Fluoroscopy(window.fluoro_panel, self)
        self.assessment = AssessmentRunner(self)
        self.assessment.fill_range = cement_fill_range(self.settings)
        self._assessed_anatomy: Any = None  # the anatomy whose fractured levels were selected
        self._cement_mesh: tuple[Any, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        self._vessels_near: tuple[tuple[int, ...], Outline | None] = ((), None)
        self.help_browser = QTextBrowser()
        self.help_browser.setObjectName("helpPanel")
        self.help_browser.setHtml(HELP_HTML)
        self.task = TaskIndicator()
        self._build_docks()
        self.training = TrainingSession(window, self)
        self._build_actions()
        self._connect()
        window.statusBar().addPermanentWidget(self.task)
        self._update_title()

    # ---- construction ----------------------------------------------------------------
    def _build_docks(self) -> None:
        w = self.window
        w.setDockOptions(w.dockOptions() | w.DockOption.AllowTabbedDocks)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.levels_panel)
        splitter.addWidget(self.details_panel)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([380, 420])
        self.levels_panel.setMinimumWidth(360)
        self.levels_dock = self._dock("Levels and checks", "levelsDock", splitter)
        self.help_dock = self._dock("How to plan", "helpDock", self.help_browser)
        w.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.levels_dock)
        w.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.help_dock)
        w.tabifyDockWidget(self.levels_dock, self.help_dock)
        self.levels_dock.raise_()
        w.resizeDocks([self.levels_dock], [400], Qt.Orientation.Horizontal)

    def _dock(self, title: str, name: str, widget: QWidget) -> QDockWidget:
        dock = QDockWidget(title, self.window)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        return dock

    def _build_actions(self) -> None:
        w, sp = self.window, QStyle.StandardPixmap
        stack = self.document.undo_stack
        self.undo_action = stack.createUndoAction(w, "&Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = stack.createRedoAction(w, "&Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for a in (self.undo_action, self.redo_action):
            w.addAction(a)
        act = w._action
        self.open_plan_action = act("Open plan…", self.open_plan_dialog, "Ctrl+Shift+P",
                                    sp.SP_DialogOpenButton, "Open a saved plan for this CT")
        self.save_plan_action = act("Save plan", self.save_plan, QKeySequence.StandardKey.Save,
                                    sp.SP_DialogSaveButton, "Save the plan (Ctrl+S)")
        self.save_as_action = act("Save plan as…", self.save_plan_as, "Ctrl+Shift+S",
                                  None, "Save the plan under a new name")
        self.propose_action = act("Propose", self.propose_selected, "Ctrl+P", None,
                                  "Propose bilateral trajectories for the selected levels")
        self.place_left_action = act("Place left needle", lambda: self.place(Side.LEFT),
                                     "Shift+L", None,
                                     "Click the entry, then the target (patient's left)")
        self.place_right_action = act("Place right needle", lambda: self.place(Side.RIGHT),
                                      "Shift+R", None,
                                      "Click the entry, then the target (patient's right)")
        self.delete_action = act("Delete needle", self.delete_selected,
                                 QKeySequence.StandardKey.Delete, sp.SP_TrashIcon,
                                 "Delete the selected needle")
        self.cancel_action = act("Cancel placing", self.editor.cancel_placing, "Esc")
        self.settings_action = act("Settings…", self.show_settings, "Ctrl+,", None,
                                   "Default gauge and the checks' thresholds")
        self.find_spine_action = act("Find the spine again", self.controller.find_anatomy,
                                     None, None, "Run the automatic anatomy again")
        self.import_sr_action = act("Import plan from DICOM SR…", self.import_sr_dialog, None,
                                    None, "Rebuild a plan from a VertebroPlan DICOM SR")
        self.export_pdf_action = act("Export PDF report…", lambda: self.export_dialog("pdf"),
                                     "Ctrl+E", None, "Write the plan as a PDF report")
        self.export_sr_action = act("Export DICOM SR…", lambda: self.export_dialog("sr"),
                                    None, None, "Write the plan as a DICOM Comprehensive 3D SR")
        self.send_action = act("Send to PACS / angio suite…", self.send_dialog, None, None,
                               "Send the plan (SR, segmentation, PDF report; the CT too if "
                               "set in Settings) to the configured DICOM node")
        self.export_seg_action = act(
            "Export DICOM SEG…", lambda: self.export_dialog("seg"), None, None,
            "Vertebrae, canal and needle paths as a DICOM Segmentation (OHIF, Slicer, PACS)")
        self.export_markups_action = act(
            "Export Slicer markups…", lambda: self.export_dialog("markups"), None, None,
            "Each needle as a 3D Slicer line (.mrk.json, LPS)")
        self.export_meshes_action = act(
            "Export meshes (STL)…", self.export_meshes_dialog, None, None,
            "Bone, canal, vertebrae and needles as STL files in LPS mm (3D printing)")
        self.import_seg_action = act(
            "Import segmentation as anatomy…", self.import_segmentation_dialog, None, None,
            "Use a label map (NIfTI: TotalSegmentator, VerSe) or a DICOM SEG as the spine")

        menu = w.menuBar()
        file_menu = next(m.menu() for m in menu.actions() if m.text() == "&File")
        first = file_menu.actions()[-2]  # before the separator above Quit
        for a in (self.open_plan_action, self.save_plan_action, self.save_as_action,
                  self.import_sr_action, self.import_seg_action):
            file_menu.insertAction(first, a)
        file_menu.insertSeparator(first)
        for a in (self.export_pdf_action, self.export_sr_action, self.export_seg_action,
                  self.export_markups_action, self.export_meshes_action, self.send_action):
            file_menu.insertAction(first, a)
        edit_menu = menu.addMenu("&Edit")
        menu.insertMenu(menu.actions()[1], edit_menu)
        for a in (self.undo_action, self.redo_action):
            edit_menu.addAction(a)
        edit_menu.addSeparator()
        edit_menu.addAction(self.delete_action)
        edit_menu.addAction(self.cancel_action)
        edit_menu.addSeparator()
        edit_menu.addAction(self.settings_action)
        plan_menu = menu.addMenu("&Plan")
        menu.insertMenu(menu.actions()[3], plan_menu)
        for a in (self.propose_action, self.place_left_action, self.place_right_action,
                  self.delete_action):
            plan_menu.addAction(a)
        plan_menu.addSeparator()
        plan_menu.addAction(self.find_spine_action)
        self.training_action = act("Training mode…", self.training.show, "Ctrl+T", None,
                                   "Practise on cases with a hidden reference plan, scored")
        training_menu = menu.addMenu("&Training")
        menu.insertMenu(menu.actions()[4], training_menu)
        training_menu.addAction(self.training_action)
        view_menu = next(m.menu() for m in menu.actions() if m.text() == "&View")
        view_menu.addSeparator()
        for dock in (self.levels_dock, self.help_dock):
            view_menu.addAction(dock.toggleViewAction())
        toolbar = w.toolbar
        toolbar.addSeparator()
        toolbar.addAction(self.save_plan_action)
        # undo/redo labels grow with the edit's name ("Undo Move L2 left target"): icons
        # in the toolbar, the full label in the tooltip and the Edit menu
        self.undo_action.setIcon(w.style().standardIcon(sp.SP_ArrowBack))
        self.redo_action.setIcon(w.style().standardIcon(sp.SP_ArrowForward))
        for a in (self.undo_action, self.redo_action):
            toolbar.addAction(a)
            button = toolbar.widgetForAction(a)
            if isinstance(button, QToolButton):
                button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)

    def _connect(self) -> None:
        c, e, d, w = self.controller, self.editor, self.document, self.window
        for view in w.mpr_views:
            view.needle_dragged.connect(e.drag)
            view.needle_drag_finished.connect(self._drag_finished)
            view.needle_picked.connect(self.select_needle)
            view.point_placed.connect(e.point_placed)
        w.view3d.needle_dragged.connect(e.drag)
        w.view3d.needle_drag_finished.connect(self._drag_finished)
        w.view3d.needle_picked.connect(self.select_needle)
        for pane in w.fluoro_panel.panes:
            pane.needle_dragged.connect(e.drag)
            pane.needle_drag_finished.connect(self._drag_finished)
            pane.needle_picked.connect(self.select_needle)
            pane.point_placed.connect(e.point_placed)
        w.bottom_tabs.currentChanged.connect(lambda _i: self._update_fluoro())
        saved = str(self.settings.value("carm/position", "prone"))
        if saved in ("prone", "supine"):
            w.fluoro_panel.set_position(saved)
            self.fluoro.set_setup(replace(self.fluoro.setup, position=saved))
        self._apply_carm_distances(*carm_distances(self.settings))
        self.set_carm_convention(carm_convention(self.settings))
        w.fluoro_panel.position_changed.connect(self.set_patient_position)
        e.needles_changed.connect(self._show_needles)
        e.results_changed.connect(lambda _r: self._update_rows())
        e.results_changed.connect(self._show_vessels_near)
        e.selection_changed.connect(self._on_selection)
        e.placing_changed.connect(self._on_placing)
        e.message.connect(lambda text: w.statusBar().showMessage(text, 20000))
        p = self.levels_panel
        p.level_selected.connect(self.select_level)
        p.needle_selected.connect(self.select_needle)
        p.propose_requested.connect(self.propose)
        p.place_requested.connect(lambda level, side: self.place(side, level))
        p.remove_requested.connect(self.remove)
        p.add_level_requested.connect(self.add_level)
        p.shift_labels_requested.connect(e.shift_labels)
        p.gauge_changed.connect(self._gauge_changed)
        d.changed.connect(self._on_plan_changed)
        d.dirty_changed.connect(lambda _dirty: self._update_title())
        d.path_changed.connect(lambda _path: self._update_title())
        c.volume_loaded.connect(self._on_volume_loaded)
        c.window_level_changed.connect(self.needle_view.set_window_level)
        c.anatomy_started.connect(lambda text: self.task.start(text, c.cancel_anatomy))
        c.anatomy_progress.connect(self.task.progress)
        c.anatomy_finished.connect(self.task.finish)
        c.anatomy_ready.connect(self._on_anatomy)
        self.assessment.ready.connect(self._on_assessment)
        self.assessment.failed.connect(lambda text: w.statusBar().showMessage(text, 20000))
        c.anatomy_unavailable.connect(self._on_anatomy_unavailable)
        c.proposal_started.connect(self._on_proposal_started)
        c.proposal_progress.connect(self.task.progress)
        c.proposal_finished.connect(self._on_proposal_finished)
        c.proposal_ready.connect(self._on_proposal)
        c.task_started.connect(lambda text: self.task.start(text, c.cancel_task))
        c.task_progress.connect(self.task.progress)
        c.task_finished.connect(self.task.finish)
        c.task_succeeded.connect(self._on_task_done)

    # ---- user actions ----------------------------------------------------------------
    def select_level(self, level: str) -> None:
        """A level row clicked: centre the slices on its body."""
        anatomy = self.controller.anatomy
        self.editor.select(None)
        self._set_highlight(level)
        if anatomy is not None and level in anatomy.levels:
            self.controller.set_crosshair(anatomy.levels[level].centroid_lps)
        self._update_fluoro(level)
        self._show_details()

    def select_needle(self, level: str, side: Side) -> None:
        self.editor.select(level, side)
        t = self.document.plan.get(level, side)
        if t is not None:  # show the pedicle part of the needle in the slices
            self.controller.set_crosshair(t.entry + 0.35 * (t.target - t.entry))

    def place(self, side: Side, level: str | None = None) -> None:
        level = level or self._current_level()
        if level is None:
            self.window.statusBar().showMessage(
                "Select a level first (Levels panel), then Place left / right.", 10000)
            return
        self.editor.start_placing(level, side)

    def delete_selected(self) -> None:
        """Del: the selected needle, else the needles of the levels selected in the panel."""
        if self.editor.selected is not None:
            self.editor.remove(*self.editor.selected)
        else:
            self.levels_panel.remove_button.click()

    def remove(self, level: str, side: Side | None) -> None:
        if side is None:
            self._extra_levels.discard(level)
        self.editor.remove(level, side)
        self._update_rows()

    def add_level(self, level: str) -> None:
        """A level the CT analysis did not find, to be planned by hand."""
        self._extra_levels.add(level)
        self._update_rows()
        self.levels_panel.select_level(level)

    def propose_selected(self) -> None:
        self.propose(self.levels_panel.selected_levels(), self.levels_panel.gauge())

    def propose(self, levels: list[str], gauge: str) -> None:
        if self.training.active:
            self.window.statusBar().showMessage(
                "Automatic proposals are off in training mode: place the needles yourself.",
                15000)
            return
        anatomy = self.controller.anatomy
        if anatomy is None:
            self.window.statusBar().showMessage(
                "The spine has not been found in this CT: place the needles by hand.", 15000)
            return
        levels = [lv for lv in levels if lv in anatomy.levels] or list(anatomy.levels)
        self._proposed_levels = levels
        self.controller.propose(levels, gauge)

    def _apply_carm_distances(self, source_to_detector_mm: float,
                              source_to_isocentre_mm: float) -> None:
        setup = self.fluoro.setup
        if (setup.source_to_detector_mm, setup.source_to_patient_mm) == (
                source_to_detector_mm, source_to_isocentre_mm):
            return
        try:
            new = replace(setup, source_to_detector_mm=source_to_detector_mm,
                          source_to_patient_mm=source_to_isocentre_mm)
        except ValueError as exc:  # an edited settings file: keep the working set-up
            self.window.statusBar().showMessage(f"C-arm distances not used: {exc}", 15000)
            return
        self.fluoro.set_setup(new)

    def show_settings(self) -> None:
        from app.pacs_browser import pacs_settings_page  # the DICOM stack: not at start

        setup = self.fluoro.setup
        dialog = SettingsDialog(self.editor.gauge, self.controller.limits, self.window,
                                planner=self._planner(), dicom_node=self._dicom_node(),
                                carm_mm=(setup.source_to_detector_mm,
                                         setup.source_to_patient_mm),
                                fill_range=cement_fill_range(self.settings),
                                send_ct=self._send_ct(), convention=setup.convention,
                                pacs=pacs_settings_page(self.settings))
        if dialog.exec():
            if dialog.pacs is not None:
                store_pacs(self.settings, dialog.pacs.nodes(), dialog.pacs.ae_title(),
                           dialog.pacs.port(), dialog.pacs.method())
            self.settings.setValue("export/send_ct", "true" if dialog.send_ct() else "false")
            store_cement_fill_range(self.settings, dialog.fill_range())
            self.assessment.fill_range = dialog.fill_range()
            detector, isocentre = dialog.carm_mm()
            self.settings.setValue("carm/source_to_detector_mm", detector)
            self.settings.setValue("carm/source_to_isocentre_mm", isocentre)
            self._apply_carm_distances(detector, isocentre)
            self.settings.setValue("carm/convention", dialog.convention())
            self.set_carm_convention(carm_convention(self.settings))
            self.settings.setValue("export/planner", dialog.planner())
            self.settings.setValue("export/dicom_node", dialog.dicom_node())
            self.settings.setValue("plan/default_gauge", dialog.gauge())
            store_limits(self.settings, dialog.limits())
            self.editor.gauge = dialog.gauge()
            self.levels_panel.set_gauge(dialog.gauge())
            self.controller.set_limits(dialog.limits())
            self._assess(now=True)

    # ---- exports -----------------------------------------------------------------------
    def _planner(self) -> str:
        return str(self.settings.value("export/planner", ""))

    def _dicom_node(self) -> str:
        """Where Send goes: the node set in Settings, else the DICOM PACS the CT came from
        (so the plan joins its study there)."""
        configured = str(self.settings.value("export/dicom_node", ""))
        if configured or not self.source_node or "://" in self.source_node:
            return configured
        return self.source_node

    def _export_inputs(self) -> tuple[Any, Plan, dict, Any] | None:
        volume, plan = self.controller.volume, self.document.plan
        if volume is None or not plan.trajectories:
            self.window.statusBar().showMessage("Plan at least one needle before exporting.",
                                                10000)
            return None
        return volume, plan, self.editor.results, self.controller.anatomy

    def export_dialog(self, kind: str) -> None:
        """Export one file (PDF, SR, SEG, markups) chosen by the user, in the background."""
        if self._export_inputs() is None:
            return
        suffix, filt, what = EXPORT_KINDS[kind]
        if kind == "seg" and self.controller.anatomy is None:
            self.window.statusBar().showMessage(
                "A segmentation needs the spine found (or imported) first.", 10000)
            return
        default = Path(self._plan_dir()) / f"vertebroplasty-plan{suffix}"
        path, _ = QFileDialog.getSaveFileName(self.window, f"Export {what}", str(default), filt)
        if not path:
            return
        target = Path(path if path.lower().endswith(suffix) else path + suffix)
        deid = kind != "markups" and QMessageBox.question(  # markups carry no identifiers
            self.window, "De-identify?",
            "Remove the patient's identifiers (for a teaching file)?",
            QMessageBox.StandardButton.No | QMessageBox.StandardButton.Yes,
        ) == QMessageBox.StandardButton.Yes
        self.export(**{f"{kind}_path": target}, deidentify=deid)

    def export_meshes_dialog(self) -> None:
        """STL meshes of bone, canal, vertebrae and needles into a folder the user picks."""
        if self._export_inputs() is None:
            return
        folder = QFileDialog.getExistingDirectory(self.window, "Export meshes (STL) into",
                                                  self._plan_dir())
        if folder:
            self.export(mesh_dir=Path(folder))

    def import_segmentation_dialog(self) -> None:
        """A label map or DICOM SEG as the anatomy; a NIfTI map's codes need their table."""
        if self.controller.volume is None:
            self.window.statusBar().showMessage("Open the CT first, then its segmentation.",
                                                10000)
            return
        path, _ = QFileDialog.getOpenFileName(self.window, "Import segmentation as anatomy",
                                              self._plan_dir(), SEGMENTATION_FILTER)
        if not path:
            return
        table = "totalsegmentator"
        if path.lower().endswith((".nii", ".nii.gz")):
            from PySide6.QtWidgets import QInputDialog

            other = "Another table (JSON file)…"
            choice, ok = QInputDialog.getItem(
                self.window, "Label table", "What do the label map's codes mean?",
                [*LABEL_TABLES, other], 0, False)
            if not ok:
                return
            if choice == other:
                table, _ = QFileDialog.getOpenFileName(self.window, "Label table",
                                                       str(Path(path).parent),
                                                       "JSON (*.json);;All files (*)")
                if not table:
                    return
            else:
                table = LABEL_TABLES[choice]
        self.controller.import_segmentation(path, table)

    def send_dialog(self) -> None:
        if self._export_inputs() is None:
            return
        node = self._dicom_node()
        if not node:
            from PySide6.QtWidgets import QInputDialog

            node, ok = QInputDialog.getText(
                self.window, "Send to PACS / angio suite",
                "DICOM node (AE title@host:port), e.g. ANGIO@10.0.0.12:104:")
            if not ok or not node.strip():
                return
            node = node.strip()
            self.settings.setValue("export/dicom_node", node)
        self.export(send_to=node, send_ct=self._send_ct())

    def _send_ct(self) -> bool:
        return str(self.settings.value("export/send_ct", "false")).lower() == "true"

    def export(self, *, pdf_path: Path | None = None, sr_path: Path | None = None,
               seg_path: Path | None = None, markups_path: Path | None = None,
               mesh_dir: Path | None = None, send_to: str | None = None,
               send_ct: bool = False, deidentify: bool = False) -> bool:
        """Start one export in the background; False if there is nothing to export."""
        inputs = self._export_inputs()
        if inputs is None:
            return False
        volume, plan, results, anatomy = inputs
        from app.export_job import ExportRequest, export_plan
        from planning.interop.study_uids import with_export_uids

        # a CT without Study / Series UIDs: one new study, made now and kept in the plan
        # (saved with it), so every export of this plan is filed together
        plan, changed = with_export_uids(plan, volume)
        if changed:
            self.document.edit(plan, "File the exports in a new study (the CT has no UIDs)")

        request = ExportRequest(pdf_path=pdf_path, sr_path=sr_path, send_to=send_to,
                                deidentify=deidentify, planner=self._planner(),
                                fluoro_setup=self.fluoro.setup,
                                fill_range=cement_fill_range(self.settings),
                                seg_path=seg_path, markups_path=markups_path,
                                mesh_dir=mesh_dir, send_ct=send_ct)
        surface = self.controller.surface
        attenuation = self.fluoro.attenuation_for(volume)
        what = "sending the plan" if send_to else "exporting the plan"
        return self.controller.run_task(
            "Sending the plan…" if send_to else "Exporting the plan…", what,
            lambda progress: export_plan(volume, plan, results, anatomy, request, progress,
                                         surface=surface, attenuation=attenuation))

    def _on_task_done(self, _action: str, report: Any) -> None:
        parts = [f"Written {p.name}" for p in getattr(report, "written", [])]
        parts += [f"Sent: {s}" for s in getattr(report, "sent", [])]
        self.window.statusBar().showMessage(" · ".join(parts) or "Export finished.", 30000)
        self.last_export = report
        self.cases.plan_exported(None if self.document.is_dirty else self.document.path,
                                 sent=bool(getattr(report, "sent", None)))

    def import_sr_dialog(self) -> None:
        if self.controller.volume is None:
            self.window.statusBar().showMessage("Open the CT first, then its plan.", 10000)
            return
        path, _ = QFileDialog.getOpenFileName(self.window, "Import plan from DICOM SR",
                                              self._plan_dir(), "DICOM SR (*.dcm);;All (*)")
        if path and self.confirm_discard("import another plan"):
            self.open_plan(path)

    # ---- files -------------------------------------------------------------------------
    def open_plan_dialog(self) -> None:
        if self.controller.volume is None:
            self.window.statusBar().showMessage("Open the CT first, then its plan.", 10000)
            return
        path, _ = QFileDialog.getOpenFileName(self.window, "Open plan", self._plan_dir(),
                                              OPEN_PLAN_FILTER)
        if path and self.confirm_discard("open another plan"):
            self.open_plan(path)

    def open_plan(self, path: str | Path, *, force_other_frame: bool | None = None) -> bool:
        """Open a plan for the current CT; a plan of another CT needs an explicit yes."""
        volume = self.controller.volume
        if volume is None:
            return False
        with error_boundary(self.window, "opening the plan"):
            plan = self.document.open(path)
            try:
                plan = check_frame(plan, volume.frame_of_reference_uid)
            except FrameMismatchError as exc:
                if force_other_frame is None:
                    force_other_frame = self._ask_other_frame(str(exc))
                if not force_other_frame:
                    self.window.statusBar().showMessage("The plan was not opened.", 10000)
                    return False
                plan = check_frame(plan, volume.frame_of_reference_uid, force_other_frame=True)
            # an SR or markups file is imported, not edited: saving writes a new plan file
            imported = not is_plan_file(path)
            if not plan.frame_of_reference_uid:  # markups carry no frame: this CT's
                plan = replace(plan, study_uid=volume.study_uid, series_uid=volume.series_uid,
                               frame_of_reference_uid=volume.frame_of_reference_uid)
            self.document.reset(plan, None if imported else Path(path),
                                dirty=imported or plan.frame_override is not None)
            self._extra_levels.clear()
            self.autosave.clear()
            return True
        return False

    def open_plan_after_load(self, path: str | Path) -> None:
        """Open ``path`` as soon as the CT being loaded is on screen (``open CT --plan``)."""
        self._plan_after_load = Path(path)

    def _ask_other_frame(self, message: str) -> bool:
        box = QMessageBox(QMessageBox.Icon.Warning, "Plan made on another CT",
                          message, QMessageBox.StandardButton.Cancel, self.window)
        box.setObjectName("otherFrameBox")
        apply = box.addButton("Apply anyway (override)", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is apply

    def save_plan(self) -> bool:
        if self.document.path is None:
            return self.save_plan_as()
        return self._save(self.document.path)

    def save_plan_as(self) -> bool:
        suggested = str(Path(self._plan_dir()) / f"plan{SUFFIX}")
        path, _ = QFileDialog.getSaveFileName(self.window, "Save plan", suggested, PLAN_FILTER)
        if not path:
            return False
        if not path.endswith(SUFFIX):
            path += SUFFIX
        return self._save(Path(path))

    def _save(self, path: Path) -> bool:
        with error_boundary(self.window, "saving the plan"):
            saved = self.document.save(path)
            self.cases.plan_saved(saved, self.document.plan, self.editor.results)
            self.settings.setValue("files/plan_dir", str(saved.parent))
            self.autosave.clear()
            self.window.statusBar().showMessage(f"Plan saved: {saved.name}", 10000)
            return True
        return False

    def _plan_dir(self) -> str:
        return str(self.settings.value("files/plan_dir", str(Path.home())))

    def confirm_discard(self, doing: str) -> bool:
        """Ask before unsaved edits would be lost; True to go on."""
        if not self.document.is_dirty:
            return True
        box = QMessageBox(QMessageBox.Icon.Question, "Unsaved plan",
                          f"The plan has unsaved changes. Save them before you {doing}?",
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self.window)
        box.setObjectName("unsavedBox")
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = box.exec()
        if answer == QMessageBox.StandardButton.Save:
            return self.save_plan()
        return answer == QMessageBox.StandardButton.Discard

    def closing(self) -> None:
        """The window closes after the user agreed: nothing left to recover."""
        self._autosave_timer.stop()
        self.autosave.clear()
        self.fluoro.shutdown()
        self.assessment.shutdown()
        self.training.stop()
        self.settings.setValue("window/geometry", self.window.saveGeometry())
        self.settings.setValue("window/state", self.window.saveState())

    def restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if geometry is not None:
            self.window.restoreGeometry(geometry)
        if state is not None:
            self.window.restoreState(state)

    # ---- recovery ----------------------------------------------------------------------
    def write_recovery(self) -> None:
        """Keep the unsaved plan on disk (called shortly after every edit)."""
        volume = self.controller.volume
        if volume is None:
            return
        if not self.document.is_dirty:
            self.autosave.clear()
            return
        path = self.document.path
        try:
            self.autosave.write(self.document.plan, volume.source or "", volume.series_uid,
                                str(path) if path else "")
        except (OSError, VertebroPlanError) as exc:  # a full disk must not stop the editing
            log.warning("Recovery file not written: %s", type(exc).__name__)
            self.window.statusBar().showMessage(
                "Could not write the recovery file (disk full or not writable): save the "
                "plan to keep it.", 15000)

    def pending_recovery(self) -> Recovery | None:
        found = self.autosave.pending()
        return found[0] if found else None

    def offer_recovery(self) -> bool:
        """At start-up: offer the plan a crashed session left; True if it is being opened."""
        recovery = self.pending_recovery()
        if recovery is None:
            return False
        n = len(recovery.plan.trajectories)
        levels = ", ".join(recovery.plan.levels) or "no needles yet"
        when = datetime.fromtimestamp(recovery.saved_at).strftime("%d %b %Y %H:%M")
        ct = Path(recovery.ct_source).name or "the CT"
        box = QMessageBox(QMessageBox.Icon.Question, "Recover unsaved plan",
                          f"VertebroPlan did not close properly. An unsaved plan ({n} needle"
                          f"{'s' if n != 1 else ''}: {levels}) on {ct}, last edited {when}, "
                          "can be recovered.\n\nRecover it?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Discard,
                          self.window)
        box.setObjectName("recoveryBox")
        box.setDefaultButton(QMessageBox.StandardButton.Yes)
        if box.exec() == QMessageBox.StandardButton.Yes:
            if not Path(recovery.ct_source).exists():
                self.window.statusBar().showMessage(
                    f"The CT of the recovered plan is no longer at {recovery.ct_source}.", 30000)
                return False
            self.recover(recovery)
            return True
        Autosave.discard(recovery)
        return False

    def recover(self, recovery: Recovery) -> None:
        """Open the recovered plan's CT; the plan is applied once the CT is loaded."""
        plan_path = Path(recovery.plan_path) if recovery.plan_path else None
        self._pending_plan = (recovery.plan, plan_path, True)
        Autosave.discard(recovery)
        self.window.open_path(recovery.ct_source, recovery.series_uid or None)

    # ---- controller and editor outcomes ------------------------------------------------
    def _on_volume_loaded(self, volume: Volume) -> None:
        self.cases.ct_opened(volume, self.source_node, is_demo_ct(volume))
        self._extra_levels.clear()
        self._highlight = None
        pending, self._pending_plan = self._pending_plan, None
        if pending is not None and (not pending[0].frame_of_reference_uid or
                                    pending[0].frame_of_reference_uid
                                    == volume.frame_of_reference_uid):
            plan, path, dirty = pending
            self.document.reset(plan, path, dirty=dirty)
            self.window.statusBar().showMessage(
                f"Recovered the unsaved plan ({len(plan.trajectories)} needles).", 20000)
        else:
            self.document.reset(Plan(study_uid=volume.study_uid, series_uid=volume.series_uid,
                                     frame_of_reference_uid=volume.frame_of_reference_uid))
        self.needle_view.set_volume(volume)
        self.needle_view.set_canal(None, None)
        self.fluoro.set_volume(volume)
        for view in self.window.mpr_views:
            view.set_outlines([])
            view.set_level_marks({})
        self.window.view3d.show_canal(*_empty_mesh())
        self.window.view3d.show_highlight(*_empty_mesh())
        self.window.view3d.show_level_labels({})
        self.levels_panel.set_labels_uncertain(False)
        self._update_rows()
        plan_path, self._plan_after_load = self._plan_after_load, None
        if plan_path is not None:
            self.open_plan(plan_path)

    def _on_anatomy(self, anatomy: Anatomy) -> None:
        marks = {n: g.centroid_lps for n, g in anatomy.levels.items()}
        for view in self.window.mpr_views:
            view.set_level_marks(marks)
        self.window.view3d.show_level_labels(marks)
        mesh = self.controller.canal_mesh
        if mesh is not None:
            self.window.view3d.show_canal(*mesh)
        self.needle_view.set_canal(anatomy.canal, anatomy.affine_lps)
        if self._highlight is not None and self._highlight[0] not in anatomy.levels:
            self._highlight = None
        self._highlight = None if self._highlight is None else (self._highlight[0], None)
        self._refresh_outlines()
        uncertain = any(g.confidence < LOW_CONFIDENCE for g in anatomy.levels.values())
        self.levels_panel.set_labels_uncertain(uncertain)
        self._update_rows()
        self._assess(now=True)
        warnings = "; ".join(anatomy.warnings)
        self.window.statusBar().showMessage(
            f"Spine found: {', '.join(anatomy.levels)}." + (f" {warnings}" if warnings else ""),
            20000)

    def _on_anatomy_unavailable(self, reason: str) -> None:
        self.window.statusBar().showMessage(
            f"{reason} Needles can be placed by hand but are not checked.", 30000)
        self._update_rows()

    def _on_proposal_started(self, text: str) -> None:
        self.task.start(text, self.controller.cancel_proposal)
        self.levels_panel.set_busy(True, text)

    def _on_proposal_finished(self) -> None:
        self.task.finish()
        self.levels_panel.set_busy(False)

    def _on_proposal(self, proposal: Any) -> None:
        levels = getattr(self, "_proposed_levels", list(proposal.plan.levels))
        self.editor.accept_proposal(proposal.plan, levels)
        n = len(proposal.plan.trajectories)
        text = f"Proposed {n} needle{'s' if n != 1 else ''} for {', '.join(levels)}."
        if proposal.omitted:
            text += " Left out: " + "; ".join(f"{k}: {v}" for k, v in proposal.omitted.items())
        self.window.statusBar().showMessage(text, 30000)
        notes = [v for v in proposal.notes.values() if "left out" in v or "thinner" in v]
        if proposal.omitted or notes:
            box = QMessageBox(QMessageBox.Icon.Information, "Proposal",
                              text + ("\n\n" + "\n".join(notes) if notes else ""),
                              QMessageBox.StandardButton.Ok, self.window)
            box.setObjectName("proposalBox")
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()

    def _on_plan_changed(self, _plan: Plan) -> None:
        self._update_title()
        if self.editor.is_dragging:
            self._autosave_timer.start(AUTOSAVE_DELAY_MS)  # a drag is one action: kept
            # when it ends
        else:  # at once (once the undo stack has taken the edit): a crash now loses
            self._autosave_timer.start(0)  # nothing of this action
        self._assess()

    def _assess(self, now: bool = False) -> None:
        """Re-assess the levels (cement previews and tip flags follow the needles)."""
        self.assessment.update(self.controller.volume, self.controller.anatomy,
                               self.document.plan.trajectories, self.editor.gauge, now=now)

    def _on_assessment(self, levels: dict[str, Any]) -> None:
        """Fracture grades into the rows; the first time for a CT the fractured levels are
        selected, so that Propose plans them. The cement preview follows."""
        self._update_rows()
        self._refresh_outlines()
        anatomy = self.controller.anatomy
        fractured = [name for name, a in levels.items() if a.fractured]
        if anatomy is not self._assessed_anatomy:
            self._assessed_anatomy = anatomy
            found = "Fractured: " + ", ".join(f"{n} ({levels[n].fracture_summary()})"
                                              for n in fractured)
            if fractured and anatomy is not None and names_uncertain(anatomy):
                # a level picked by a name that may be wrong is the wrong-level never-event
                # the warning first: a long list of levels is clipped at the window's edge
                self.window.statusBar().showMessage(
                    "Level names are UNCERTAIN: count the vertebrae on the images and select "
                    "the levels yourself. " + found + ".", 30000)
            elif fractured and not self.levels_panel.selected_levels():
                self.levels_panel.select_levels(fractured)
                self.window.statusBar().showMessage(found + ". Selected for Propose.", 30000)

    def _drag_finished(self) -> None:
        self.editor.drag_finished()
        self._3d_timer.stop()
        self._catch_up()
        self._autosave_timer.start(0)

    def _show_needles(self, needles: list[NeedleDisplay]) -> None:
        for view in self.window.mpr_views:
            view.set_needles(needles)
        # without a GPU a 3D frame takes ~0.1–0.5 s: while a needle is dragged, the slices,
        # the needle view and the checks follow every move, and the 3D view follows when
        # the mouse pauses (or at once where frames are fast)
        view3d = self.window.view3d
        self._pending_3d = needles
        if not self.editor.is_dragging or view3d.last_render_s <= LIVE_3D_MAX_S:
            view3d.show_needles(needles)
        else:
            self._3d_timer.start()
        selected = next((n for n in needles if n.selected), None)
        self.needle_view.set_needle(selected)
        self.window.fluoro_panel.set_needles(needles)
        if not self.editor.is_dragging:  # working views follow the needle when it rests
            self._update_fluoro()

    def _on_selection(self, key: tuple[str, Side] | None) -> None:
        if key is not None:
            self.levels_panel.select_level(key[0])
            self._set_highlight(key[0])
        self._show_details()
        self._update_fluoro()

    def _on_placing(self, placing: bool, pending: Any) -> None:
        for view in self.window.mpr_views:
            view.set_placing(placing, pending)
        self.window.fluoro_panel.set_placing(placing)

    def _gauge_changed(self, gauge: str) -> None:
        self.editor.set_gauge(gauge, apply_to_selected=True)
        self._assess()  # the pedicles are judged for this gauge

    def set_plan_editable(self, editable: bool) -> None:
        """Lock the plan (a submitted training attempt) or unlock it, in every view."""
        if not editable:
            self.editor.cancel_placing()
        self.editor.locked = not editable
        self.window.view3d.set_editable(editable)

    # ---- derived displays --------------------------------------------------------------
    def _update_fluoro(self, level: str | None = None) -> None:
        """Aim the simulated C-arm: AP/lateral at the level being worked on (its body's
        centroid, else its needles, else the crosshair), working views at the selected
        needle."""
        plan, key = self.document.plan, self.editor.selected
        trajectory = None if key is None else plan.get(*key)
        level = level or (key[0] if key is not None else self._current_level())
        anatomy = self.controller.anatomy
        points = [p for t in plan.trajectories if t.level == level
                  for p in (t.entry_lps, t.target_lps)]
        if level is not None and anatomy is not None and level in anatomy.levels:
            centre = anatomy.levels[level].centroid_lps
        elif points:
            centre = np.mean(points, axis=0)
        else:
            centre = self.controller.crosshair_lps
        self.fluoro.show(centre, trajectory)

    def _current_level(self) -> str | None:
        selected = self.levels_panel.selected_levels()
        if selected:
            return selected[0]
        anatomy = self.controller.anatomy
        if anatomy is None:
            return None
        centres = {n: g.centroid_lps for n, g in anatomy.levels.items()}
        return level_at(centres, self.controller.crosshair_lps,
                        self.window.axial_view.plane.normal_lps)

    def _set_highlight(self, level: str | None) -> None:
        anatomy = self.controller.anatomy
        if level is None or anatomy is None or level not in anatomy.levels:
            self._highlight = None
        elif self._highlight is None or self._highlight[0] != level:
            self._highlight = (level, None)
        self._refresh_outlines()

    def _refresh_outlines(self) -> None:
        """Canal outline in every slice; the selected vertebra outlined and shown in 3D."""
        anatomy = self.controller.anatomy
        outlines: list[Outline] = []
        if anatomy is not None:
            outlines.append(Outline("canal", anatomy.canal, anatomy.affine_lps,
                                    QColor(CANAL_COLOR), 1.8, fill_alpha=40))
        if anatomy is not None and self._highlight is not None:
            level, mesh = self._highlight
            mask = anatomy.vertebra_mask(level)
            outlines.append(Outline(f"vertebra:{level}", mask, anatomy.affine_lps,
                                    QColor(HIGHLIGHT_COLOR), 1.4))
            if mesh is None:
                mesh = mask_mesh(mask, anatomy.affine_lps, step_vox=2)
                self._highlight = (level, mesh)
            self.window.view3d.show_highlight(*mesh)
        else:
            self.window.view3d.show_highlight(*_empty_mesh())
        outlines += self._cement_preview()
        if self._vessels_near[1] is not None:
            outlines.append(self._vessels_near[1])
        for view in self.window.mpr_views:
            view.set_outlines(outlines)

    def _show_vessels_near(self, results: dict[Any, CheckResult]) -> None:
        """The contrast-filled vessels the checks found in the CT, drawn in the slices and
        in 3D around every needle that comes within `VESSEL_SHOW_MM` of one; cleared when
        none does. Recomputed only when the set of boxes changes (a drag that stays near
        a vessel moves the box a voxel at a time)."""
        ctx = self.controller.check_context
        evidence = None if ctx is None else ctx.evidence
        near = [t for t in self.document.plan.trajectories
                if (r := results.get(t.key)) is not None and r.vessel_clearance_mm is not None
                and r.vessel_clearance_mm < VESSEL_SHOW_MM]
        if evidence is None or not near:
            if self._vessels_near[1] is not None:
                self._vessels_near = ((), None)
                self.window.view3d.show_vessels(*_empty_mesh())
                self._refresh_outlines()
            return
        vessels = evidence.vessels
        mask = vessels.lumen | vessels.wall_calcium
        inv = np.linalg.inv(vessels.affine_lps)
        keep = np.zeros(mask.shape, dtype=bool)
        boxes = []
        for t in near:
            ends = np.array([t.entry_lps, t.target_lps]) @ inv[:3, :3].T + inv[:3, 3]
            reach = VESSEL_BOX_MM / float(np.linalg.norm(vessels.affine_lps[:3, 0]))
            lo = np.maximum(np.floor(ends.min(axis=0) - reach).astype(int), 0)
            hi = np.minimum(np.ceil(ends.max(axis=0) + reach).astype(int) + 1,
                            mask.shape[::-1])
            box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
            keep[box] = mask[box]
            boxes += [*lo, *hi]
        key = tuple(int(b) for b in boxes)
        if key == self._vessels_near[0]:
            return
        outline = Outline("vessels", keep, vessels.affine_lps, QColor(VESSEL_COLOR), 1.6,
                          fill_alpha=60)
        self._vessels_near = (key, outline)
        self.window.view3d.show_vessels(*mask_mesh(keep, vessels.affine_lps))
        self._refresh_outlines()

    def _cement_preview(self) -> list[Outline]:
        """The selected level's cement spread (one ellipsoid per tip, clipped to the body)
        in 3D, and its outlines for the slices; cleared where there is none."""
        anatomy = self.controller.anatomy
        level = None if self._highlight is None else self._highlight[0]
        found = self.assessment.result.get(level) if level is not None else None
        cement = None if found is None else found.cement
        if anatomy is None or cement is None or not cement.spreads:
            self._cement_mesh = None
            self.window.view3d.show_cement(*_empty_mesh())
            return []
        if self._cement_mesh is None or self._cement_mesh[0] is not cement:
            parts = [mask_mesh(s.mask, anatomy.affine_lps) for s in cement.spreads]
            self._cement_mesh = (cement, _merge_meshes(parts))
            self.window.view3d.show_cement(*self._cement_mesh[1])
        return [Outline(f"cement:{level}:{i}", s.mask, anatomy.affine_lps,
                        QColor(CEMENT_COLOR), 1.2, fill_alpha=70)
                for i, s in enumerate(cement.spreads)]

    def _update_rows(self) -> None:
        anatomy = self.controller.anatomy
        plan = self.document.plan
        names = set(plan.levels) | self._extra_levels
        if anatomy is not None:
            names |= set(anatomy.levels)
        rows = []
        for name in sorted(names, key=level_index):
            geo = anatomy.levels.get(name) if anatomy is not None else None
            judged = self.assessment.result.get(name)
            rows.append(LevelRow(
                fracture_grade=None if judged is None else judged.genant_grade,
                fracture_text="" if judged is None else judged.fracture_summary(),
                name=name, detected=geo is not None,
                confidence=None if geo is None else float(geo.confidence),
                left=self.editor.result((name, Side.LEFT)),
                right=self.editor.result((name, Side.RIGHT)),
                left_planned=plan.get(name, Side.LEFT) is not None,
                right_planned=plan.get(name, Side.RIGHT) is not None,
            ))
        self.levels_panel.set_rows(rows)
        if self.editor.is_dragging:  # the details (rich text, ~25 ms) follow at a pause
            self._3d_timer.start()
        else:
            self._show_details()

    def set_patient_position(self, position: str) -> None:
        """Prone or supine on the angio table: the C-arm angles of the details panel, the
        simulated fluoroscopy and the report follow it; remembered for the next session."""
        if position not in ("prone", "supine") or position == self.fluoro.setup.position:
            return
        self.settings.setValue("carm/position", position)
        self.window.fluoro_panel.set_position(position)
        self.fluoro.set_setup(replace(self.fluoro.setup, position=position))  # type: ignore[arg-type]
        self._show_details()

    def set_carm_convention(self, convention: str) -> None:
        """Which C-arm angle convention leads in the details, the fluoroscopy and the
        report (both are always shown): how the suite registers the patient on its C-arm."""
        if convention == self.fluoro.setup.convention:
            return
        self.fluoro.set_setup(replace(self.fluoro.setup, convention=convention))  # type: ignore[arg-type]
        self.window.fluoro_panel.set_convention(convention)
        self._show_details()

    def _show_details(self) -> None:
        key = self.editor.selected
        t = None if key is None else self.document.plan.get(*key)
        position = self.fluoro.setup.position
        carm = None if t is None else working_views(t, position)
        level = key[0] if key is not None else (
            None if self._highlight is None else self._highlight[0])
        judged = None if level is None else self.assessment.result.get(level)
        self.details_panel.show_result(None if key is None else self.editor.result(key),
                                       t.gauge if t is not None else None, carm, position,
                                       level=judged, convention=self.fluoro.setup.convention)

    def _catch_up(self) -> None:
        """The mouse paused during a drag, or the drag ended: the slower displays follow."""
        self.window.view3d.show_needles(self._pending_3d)
        self._show_details()

    def _update_title(self) -> None:
        volume = self.controller.volume
        parts = ["VertebroPlan"]
        if volume is not None and volume.source:
            parts.append(Path(volume.source).name)
        if volume is not None:
            path = self.document.path
            parts.append(path.name if path is not None else "unsaved plan")
        self.window.setWindowTitle(" — ".join(parts) + "[*]")
        self.window.setWindowModified(self.document.is_dirty)


def _merge_meshes(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One mesh of several (vertices, faces, normals): the faces re-indexed."""
    if not parts:
        return _empty_mesh()
    offsets = np.cumsum([0] + [len(v) for v, _f, _n in parts[:-1]])
    return (np.concatenate([v for v, _f, _n in parts]).astype(np.float32),
            np.concatenate([f + o for (_v, f, _n), o in zip(parts, offsets, strict=True)]
                           ).astype(np.int32),
            np.concatenate([n for _v, _f, n in parts]).astype(np.float32))


def _empty_mesh() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32),
            np.zeros((0, 3), np.float32))
