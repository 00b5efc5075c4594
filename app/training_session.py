"""Training mode: a case opened with its reference hidden, timed, scored on "Submit".

Why a session object: training changes how the workstation behaves (no automatic
proposals, optionally no CT slices, editing locked after submission, the reference shown
only then) and must undo all of it when the trainee leaves; keeping it here leaves the
planning workspace unchanged for surgeons.

The case's CT, anatomy and reference are loaded together in one background task, so every
attempt at a case is checked against the same anatomy (for demo cases its ground truth) and
the clock starts only when the trainee can plan.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import QObject, QSettings, Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QFileDialog, QFrame, QScrollArea

from app.error_boundary import report_error
from planning.mask_reslice import mask_mesh
from planning.plan import Plan
from planning.progress import Progress
from planning.report.model import TraineeReport
from planning.training import (
    TrainingCase,
    TrainingScore,
    builtin_library,
    format_duration,
    list_cases,
    open_case,
    score_attempt,
)
from widgets.plan_display import NeedleDisplay
from widgets.training_panel import TrainingPanel

if TYPE_CHECKING:
    from app.plan_document import PlanDocument
    from app.plan_editor import PlanEditor
    from app.plan_files import PlanFiles
    from app.shell import Shell
    from widgets.levels_panel import LevelsPanel

OPEN_CASE = "opening the training case"
WRITE_REPORT = "writing the trainee report"


class TrainingHost(Protocol):
    """What a training session drives of the plan workspace (`app.plan_workspace`): the
    plan, its editor and files, the levels panel and its dock, and the settings."""

    settings: QSettings
    document: PlanDocument
    editor: PlanEditor
    files: PlanFiles
    levels_panel: LevelsPanel
    levels_dock: QDockWidget

    def select_level(self, level: str) -> None: ...
    def set_plan_editable(self, editable: bool) -> None: ...


class TrainingSession(QObject):
    """The training dock and the state of one trainee's attempt."""

    def __init__(self, window: Shell, workspace: TrainingHost) -> None:
        super().__init__(window)  # type: ignore[arg-type]  # the window is a QObject
        self.window, self.workspace = window, workspace
        self.controller = window.controller
        self.panel = TrainingPanel()
        self.dock = QDockWidget("Training", window)
        self.dock.setObjectName("trainingDock")
        scroll = QScrollArea()  # the rubric under the score must stay reachable on a laptop
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.panel)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.panel.minimumSizeHint().width()
                               + scroll.verticalScrollBar().sizeHint().width() + 4)
        self.dock.setWidget(scroll)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        window.tabifyDockWidget(workspace.levels_dock, self.dock)
        self.dock.hide()
        self.case: TrainingCase | None = None
        self.reference: Plan | None = None
        self.score: TrainingScore | None = None
        self.attempt: Plan | None = None
        self._started = 0.0
        self._elapsed = 0.0
        self._fluoro_only = False
        self._clock = QTimer(self)
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._tick)
        self.panel.library_chosen.connect(self.open_library)
        self.panel.start_requested.connect(self.start)
        self.panel.submit_requested.connect(self.submit)
        self.panel.stop_requested.connect(self.stop)
        self.panel.report_requested.connect(self.report_dialog)
        self.controller.task_succeeded.connect(self._on_task_done)
        self.controller.error_occurred.connect(self._on_error)

    # ---- state ------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """A case is open (loading, being planned or scored)."""
        return self.panel.state != "idle"

    @property
    def running(self) -> bool:
        """The trainee is planning: the reference is hidden and the clock runs."""
        return self.panel.state == "running"

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._started if self.running else self._elapsed

    # ---- actions ----------------------------------------------------------------------
    def show(self) -> None:
        """Training ▸ Training mode: the dock, with the last library (or the built-in one)."""
        if not self.panel.selected_case():
            folder = self.workspace.settings.value("training/library", "")
            self.open_library(Path(folder) if folder and Path(folder).is_dir()
                              else builtin_library())
        self.dock.show()
        self.dock.raise_()

    def open_library(self, folder: Path) -> None:
        try:
            cases, problems = list_cases(folder)
        except Exception as exc:  # an unreadable folder: say so, keep the current list
            report_error(self.window, "opening the case library", exc)
            return
        self.panel.set_cases(folder, cases, problems)
        if folder != builtin_library():
            self.workspace.settings.setValue("training/library", str(folder))
        self.window.statusBar().showMessage(
            f"{len(cases)} training case{'s' if len(cases) != 1 else ''} in {folder.name}.",
            10000)

    def start(self, case: TrainingCase) -> None:
        """Open the case's CT with its anatomy and hidden reference, in the background."""
        if self.panel.state == "running" or self.controller.is_busy_with_task:
            return
        if self.panel.state == "idle" and not self.workspace.files.confirm_discard(
                "start a training case"):
            return
        self._restore_views()
        self.case, self.reference, self.score, self.attempt = case, None, None, None
        self._fluoro_only = self.panel.fluoro_only
        limits = self.controller.limits

        def job(progress: Progress) -> tuple[Any, ...]:
            opened = open_case(case, limits=limits, progress=progress)
            return opened.volume, opened.anatomy, opened.context, \
                mask_mesh(opened.anatomy.canal, opened.anatomy.affine_lps), opened.reference

        if self.controller.run_task(f"Opening training case “{case.title}”…", OPEN_CASE, job):
            self.panel.set_state("loading")
            self.panel.set_task(f"Opening “{case.title}”…")

    def submit(self) -> None:
        """Score the plan on screen against the reference, then show the reference."""
        if not self.running or self.reference is None:
            return
        self._elapsed = time.monotonic() - self._started
        self._clock.stop()
        self.attempt = self.workspace.document.plan
        results = self.controller.check_all(self.attempt)
        self.score = score_attempt(self.reference, self.attempt, results, self._elapsed)
        self.panel.set_state("submitted")
        self.panel.show_score(self.score)
        self._tick()
        self._restore_views()
        self._set_editable(False)
        self._show_reference(True)
        self.window.statusBar().showMessage(self.score.summary(), 30000)

    def stop(self) -> None:
        """Leave training: everything back as a planning workstation."""
        self._clock.stop()
        if self.panel.state == "loading":
            self.controller.cancel_task()
        self._restore_views()
        self._set_editable(True)
        self._show_reference(False)
        self.case = self.reference = self.score = self.attempt = None
        self.panel.set_state("idle")
        self.panel.set_clock("")
        self.panel.set_task("")

    def report_dialog(self) -> None:
        if self.score is None:
            return
        name = f"{self.case.case_id if self.case else 'case'}-score.pdf"
        path, _ = QFileDialog.getSaveFileName(self.window, "Save trainee report",
                                              str(Path.home() / name), "PDF (*.pdf)")
        if path:
            self.write_report(Path(path))

    def write_report(self, path: Path) -> bool:
        """Write the trainee PDF in the background (progress and cancel in the status bar)."""
        from planning.report.trainee_pdf import write_trainee_report

        case, score, reference, attempt = self.case, self.score, self.reference, self.attempt
        volume, anatomy = self.controller.volume, self.controller.anatomy
        if None in (case, score, reference, attempt, volume):
            return False
        trainee = self.panel.trainee_name
        results = self.controller.check_all(attempt)  # type: ignore[arg-type]

        def job(progress: Progress) -> Path:  # a refusal of the model reaches the user too
            report = TraineeReport(case, score, volume, attempt,  # type: ignore[arg-type]
                                   reference, anatomy=anatomy, results=results,
                                   trainee_name=trainee)
            return write_trainee_report(path, report, progress)

        return self.controller.run_task("Writing the trainee report…", WRITE_REPORT, job)

    # ---- outcomes ---------------------------------------------------------------------
    def _on_task_done(self, action: str, result: object) -> None:
        if action == OPEN_CASE and self.panel.state == "loading":
            volume, anatomy, context, mesh, reference = result  # type: ignore[misc]
            self.controller.set_volume(volume, find_spine=False)
            self.controller.set_anatomy(anatomy, context, mesh)
            self.reference = reference
            self._begin()
        elif action == WRITE_REPORT:
            self.window.statusBar().showMessage(f"Trainee report written: {result}", 20000)

    def _on_error(self, action: str, _exc: object) -> None:
        if action == OPEN_CASE and self.panel.state == "loading":
            self.panel.set_state("idle")
            self.panel.set_task("The case could not be opened (see the message).")

    def _begin(self) -> None:
        case = self.case
        assert case is not None and self.reference is not None
        levels = ", ".join(case.levels)
        self.panel.set_state("running")
        self.panel.set_task(
            f"Plan a bilateral transpedicular pair ({case.gauge}) at {levels}, then press "
            "Submit plan. The reference is hidden; the checks stay on.")
        self._set_editable(True)
        self._show_reference(False)
        self.workspace.editor.set_gauge(case.gauge)
        self.workspace.levels_panel.set_gauge(case.gauge)
        self.workspace.select_level(case.levels[0])
        if self._fluoro_only:
            self._fluoro_views_only()
        self._started = time.monotonic()
        self._clock.start()
        self._tick()

    def _tick(self) -> None:
        self.panel.set_clock(f"Time {format_duration(self.elapsed_s)}")

    # ---- what the views show ------------------------------------------------------------
    def _fluoro_views_only(self) -> None:
        w = self.window
        for view in (*w.mpr_views, w.view3d):
            view.parentWidget().hide()
        w.bottom_tabs.setTabVisible(0, False)
        w.bottom_tabs.setCurrentWidget(w.fluoro_panel)
        w.fluoro_panel.set_mode("standard")

    def _restore_views(self) -> None:
        w = self.window
        for view in (*w.mpr_views, w.view3d):
            view.parentWidget().show()
        w.bottom_tabs.setTabVisible(0, True)

    def _set_editable(self, editable: bool) -> None:
        for view in self.window.mpr_views:
            view.set_editable(editable)
        self.window.fluoro_panel.set_editable(editable)
        self.workspace.set_plan_editable(editable)

    def _show_reference(self, shown: bool) -> None:
        needles = [] if not shown or self.reference is None else [
            NeedleDisplay(t.level, t.side, t.entry, t.target, t.radius_mm,
                          summary=f"Reference {t.label}")
            for t in self.reference.trajectories]
        for view in self.window.mpr_views:
            view.set_reference(needles)
        self.window.fluoro_panel.set_reference(needles)
        self.window.view3d.set_reference(needles)
