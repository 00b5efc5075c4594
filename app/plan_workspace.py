"""The planning half of the main window: docks, plan actions, and the flow of a plan edit.

Every plan edit takes one path: a widget emits an intent → `PlanEditor` pushes a command on
the `PlanDocument`'s undo stack → the document emits ``changed`` → the editor re-checks →
every view, the levels panel, the details and the needle view redraw from the same values;
the recovery file follows within a moment. Nothing here computes anatomy or checks.

Its parts, each in its own module: `PlanFiles` (open, save, recovery), `PlanExports`
(reports, DICOM, send), `ScenePresenter` (what the views show besides the CT),
`install_plan_menus` (the menus) and `TrainingSession`. It sees the main window through
`app.shell.Shell`, never the window class itself.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QMessageBox, QSplitter, QTextBrowser, QWidget

from app.fluoroscopy import Fluoroscopy
from app.help_text import HELP_HTML
from app.plan_exports import PlanExports
from app.plan_files import PlanFiles
from app.plan_menus import install_plan_menus
from app.plan_session import PlanSession
from app.scene_presenter import ScenePresenter
from app.settings import (
    carm_convention,
    carm_distances,
    cement_fill_range,
    store_cement_fill_range,
    store_limits,
    store_pacs,
)
from app.training_session import TrainingSession
from planning.anatomy.model import Anatomy, level_at, names_uncertain
from planning.anatomy_source import is_demo_ct
from planning.carm import working_views
from planning.plan import Plan, Side, level_index
from planning.volume import Volume
from widgets.check_details import CheckDetailsPanel
from widgets.levels_panel import LevelRow, LevelsPanel
from widgets.plan_display import NeedleDisplay
from widgets.settings_dialog import SettingsDialog
from widgets.task_indicator import TaskIndicator

if TYPE_CHECKING:
    from app.shell import Shell

DRAG_3D_PAUSE_MS = 150  # the 3D view and the details catch up when a drag pauses this long


def omitted_text(omitted: dict[str, str]) -> str:
    """"Left out T12, L1: why; L5: why.": the levels left out, those with the same reason
    together (a CT too coarse for proposals leaves every level out for one reason)."""
    by_reason: dict[str, list[str]] = {}
    for level, why in omitted.items():
        reason = why.split(": ", 1)[1] if why.startswith(f"{level}: ") else why
        by_reason.setdefault(reason.rstrip("."), []).append(level)
    parts = [f"{', '.join(levels)}: {why}" for why, levels in by_reason.items()]
    return "Left out " + "; ".join(parts) + "."


class PlanWorkspace(QObject):
    """Plan document, editor, files, exports, docks and actions of one main window."""

    def __init__(self, shell: Shell, session: PlanSession) -> None:
        super().__init__(shell)  # type: ignore[arg-type]  # the window is a QObject
        self.window, self.session = shell, session
        session.message.connect(lambda text: self._status(text, 20000))
        self.controller, self.settings = session.controller, session.settings
        self.document, self.editor = session.document, session.editor
        self.cases, self.assessment = session.cases, session.assessment
        self._extra_levels: set[str] = set()
        self.files = PlanFiles(shell, session, self._extra_levels.clear, self)
        self._3d_timer = QTimer(self)
        self._3d_timer.setSingleShot(True)
        self._3d_timer.setInterval(DRAG_3D_PAUSE_MS)
        self._3d_timer.timeout.connect(self._catch_up)

        self.levels_panel = LevelsPanel()
        self.levels_panel.set_gauge(self.editor.gauge)
        self.details_panel = CheckDetailsPanel()
        self.needle_view = shell.needle_view
        self.fluoro = Fluoroscopy(shell.fluoro_panel, self)
        self.exports = PlanExports(shell, session, self.fluoro, self.files.plan_dir, self)
        self.scene = ScenePresenter(shell, session)
        self._assessed_anatomy: Any = None  # the anatomy whose fractured levels were selected
        self.help_browser = QTextBrowser()
        self.help_browser.setObjectName("helpPanel")
        self.help_browser.setHtml(HELP_HTML)
        self.task = TaskIndicator()
        self._build_docks()
        self.training = TrainingSession(shell, self)
        self.actions = install_plan_menus(shell, self)
        self._connect()
        shell.statusBar().addPermanentWidget(self.task)
        self._update_title()

    def _status(self, text: str, ms: int) -> None:
        self.window.statusBar().showMessage(text, ms)

    # ---- construction ----------------------------------------------------------------
    def _build_docks(self) -> None:
        w: Any = self.window  # Qt's QMainWindow calls
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
        dock = QDockWidget(title, self.window)  # type: ignore[call-overload]
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        return dock

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
        e.results_changed.connect(
            lambda r: self.scene.show_vessels_near(r, self.editor.is_dragging))
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

    # ---- user actions ----------------------------------------------------------------
    def select_level(self, level: str) -> None:
        """A level row clicked: centre the slices on its body."""
        anatomy = self.controller.anatomy
        self.editor.select(None)
        self.scene.set_highlight(level)
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
            self._status(
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
            self._status(
                "Automatic proposals are off in training mode: place the needles yourself.",
                15000)
            return
        anatomy = self.controller.anatomy
        if anatomy is None:
            self._status(
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
            self._status(f"C-arm distances not used: {exc}", 15000)
            return
        self.fluoro.set_setup(new)

    def show_settings(self) -> None:
        from app.pacs_browser import pacs_settings_page  # the DICOM stack: not at start

        setup = self.fluoro.setup
        dialog = SettingsDialog(self.editor.gauge, self.controller.limits, self.window,
                                planner=self.exports.planner(),
                                dicom_node=self.exports.dicom_node(),
                                carm_mm=(setup.source_to_detector_mm,
                                         setup.source_to_patient_mm),
                                fill_range=cement_fill_range(self.settings),
                                send_ct=self.exports.send_ct(), convention=setup.convention,
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
            self.session.assess(now=True)

    # ---- the window's life -------------------------------------------------------------
    def closing(self) -> None:
        """The window closes after the user agreed: nothing left to recover."""
        self.files.closing()
        self.fluoro.shutdown()
        self.session.shutdown()
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

    # ---- controller and editor outcomes ------------------------------------------------
    def _on_volume_loaded(self, volume: Volume) -> None:
        self.cases.ct_opened(volume, self.exports.source_node, is_demo_ct(volume))
        self._extra_levels.clear()
        self.files.volume_loaded(volume)
        self.needle_view.set_volume(volume)
        self.scene.clear()
        self.fluoro.set_volume(volume)
        self.levels_panel.set_labels_uncertain(False)
        self._update_rows()
        self.files.open_plan_asked_for()

    def _on_anatomy(self, anatomy: Anatomy) -> None:
        self.scene.show_anatomy(anatomy)
        self.levels_panel.set_labels_uncertain(names_uncertain(anatomy),
                                               "\n".join(anatomy.warnings))
        self._update_rows()
        self.session.assess(now=True)
        warnings = "; ".join(anatomy.warnings)
        self._status(
            f"Spine found: {', '.join(anatomy.levels)}." + (f" {warnings}" if warnings else ""),
            20000)

    def _on_anatomy_unavailable(self, reason: str) -> None:
        self._status(
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
            text += " " + omitted_text(proposal.omitted)
        self._status(text, 30000)
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
        self.files.plan_edited(self.editor.is_dragging)  # the session re-assesses

    def _on_assessment(self, levels: dict[str, Any]) -> None:
        """Fracture grades into the rows; the first time for a CT the fractured levels are
        selected, so that Propose plans them. The cement preview follows."""
        self._update_rows()
        self.scene.refresh_outlines()
        anatomy = self.controller.anatomy
        fractured = [name for name, a in levels.items() if a.fractured]
        if anatomy is not self._assessed_anatomy:
            self._assessed_anatomy = anatomy
            found = "Fractured: " + ", ".join(f"{n} ({levels[n].fracture_summary()})"
                                              for n in fractured)
            if fractured and anatomy is not None and names_uncertain(anatomy):
                # a level picked by a name that may be wrong is the wrong-level never-event
                # the warning first: a long list of levels is clipped at the window's edge
                self._status(
                    "Level names are UNCERTAIN: count the vertebrae on the images and select "
                    "the levels yourself. " + found + ".", 30000)
            elif fractured and not self.levels_panel.selected_levels():
                self.levels_panel.select_levels(fractured)
                self._status(found + ". Selected for Propose.", 30000)

    def _drag_finished(self) -> None:
        self.editor.drag_finished()
        self._3d_timer.stop()
        self._catch_up()
        self.files.plan_edited(dragging=False)

    def _show_needles(self, needles: list[NeedleDisplay]) -> None:
        if not self.scene.show_needles(needles, self.editor.is_dragging):
            self._3d_timer.start()  # the 3D view follows when the drag pauses
        if not self.editor.is_dragging:  # working views follow the needle when it rests
            self._update_fluoro()

    def _on_selection(self, key: tuple[str, Side] | None) -> None:
        if key is not None:
            self.levels_panel.select_level(key[0])
            self.scene.set_highlight(key[0])
        self._show_details()
        self._update_fluoro()

    def _on_placing(self, placing: bool, pending: Any) -> None:
        for view in self.window.mpr_views:
            view.set_placing(placing, pending)
        self.window.fluoro_panel.set_placing(placing)

    def _gauge_changed(self, gauge: str) -> None:
        self.editor.set_gauge(gauge, apply_to_selected=True)
        self.session.assess()  # the pedicles are judged for this gauge

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
            self.scene.highlighted_level)
        judged = None if level is None else self.assessment.result.get(level)
        self.details_panel.show_result(None if key is None else self.editor.result(key),
                                       t.gauge if t is not None else None, carm, position,
                                       level=judged, convention=self.fluoro.setup.convention)

    def _catch_up(self) -> None:
        """The mouse paused during a drag, or the drag ended: the slower displays follow."""
        self.scene.flush_3d()
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


