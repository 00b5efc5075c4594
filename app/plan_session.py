"""One planning session without a window: the open CT with its anatomy and checks, the plan
with its undo history, the editor that checks every edit, the level assessment and the
case list.

Why apart from the window (as napari's ViewerModel, or a Slicer module's Logic): everything
a plan *is* lives here, and the window only shows it. A session can be driven and tested
with no widget at all (open a CT, find the spine, propose, edit, undo, read the checks), and
the window's parts — the files, the exports, the scene, the training mode — are built on
one session instead of on each other.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QSettings, Signal

from app.assessment_runner import AssessmentRunner
from app.case_tracking import CaseTracker
from app.controller import Controller
from app.plan_document import PlanDocument
from app.plan_editor import PlanEditor
from app.settings import cement_fill_range, default_gauge, limits, open_settings
from planning.plan import Plan
from planning.volume import Volume


class PlanSession(QObject):
    """The CT, anatomy, checks, plan, assessment and case list of one workstation.

    ``message`` carries one-line news for the user (the window puts it in its status bar).
    """

    message = Signal(str)

    def __init__(self, controller: Controller | None = None,
                 settings: QSettings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller if controller is not None else Controller(self)
        self.settings = settings if settings is not None else open_settings()
        self.document = PlanDocument(self)
        self.editor = PlanEditor(self.controller, self.document, self)
        self.editor.gauge = default_gauge(self.settings)
        self.controller.set_limits(limits(self.settings))
        self.assessment = AssessmentRunner(self)
        self.assessment.fill_range = cement_fill_range(self.settings)
        self.cases = CaseTracker(self.message.emit)
        self.document.changed.connect(lambda _plan: self.assess())
        self.controller.volume_loaded.connect(self._new_plan)

    @property
    def plan(self) -> Plan:
        return self.document.plan

    def _new_plan(self, volume: Volume) -> None:
        """A new CT starts an empty plan in its frame of reference (its undo history
        gone): a plan never outlives the CT it was made on."""
        self.document.reset(Plan(study_uid=volume.study_uid, series_uid=volume.series_uid,
                                 frame_of_reference_uid=volume.frame_of_reference_uid))

    def assess(self, now: bool = False) -> None:
        """Re-assess the levels (cement previews and tip flags follow the needles); at once
        with ``now``, else when the needles have settled."""
        c = self.controller
        self.assessment.update(c.volume, c.anatomy, self.document.plan.trajectories,
                               self.editor.gauge, now=now)

    def assessment_of_plan(self) -> dict[str, object] | None:
        """The level assessment on screen, when it was made for the anatomy and needles the
        plan has now (an export then prints what the window shows instead of assessing
        again with other inputs); None while it is being redone."""
        c = self.controller
        return self.assessment.result_for(c.anatomy, self.document.plan.trajectories)

    def shutdown(self) -> None:
        """The window closes: background work stops."""
        self.assessment.shutdown()
