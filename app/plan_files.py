"""The plan's files: open, import, save, the question before unsaved edits are lost, and
crash recovery.

Why apart from the workspace: these are the actions that touch the disk and ask the user
(file dialogs, "save before…?", "recover the plan a crash left?"); the workspace itself
only routes plan edits between the views. Every write goes through `error_boundary`, so a
full disk or a bad file costs a message naming the file, never the plan on screen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.autosave import Autosave, Recovery
from app.error_boundary import error_boundary
from planning.errors import VertebroPlanError
from planning.interop.any_plan import is_plan_file
from planning.interop.plan_file import SUFFIX, FrameMismatchError, check_frame
from planning.plan import Plan
from planning.volume import Volume

if TYPE_CHECKING:
    from app.plan_session import PlanSession
    from app.shell import Shell

log = logging.getLogger("vertebroplan")
PLAN_FILTER = f"VertebroPlan plans (*{SUFFIX});;All files (*)"
OPEN_PLAN_FILTER = (f"Plans (*{SUFFIX} *.dcm *.mrk.json);;VertebroPlan plans (*{SUFFIX});;"
                    "DICOM SR (*.dcm);;3D Slicer markups (*.mrk.json);;All files (*)")
AUTOSAVE_DELAY_MS = 250  # a drag writes its recovery file at most four times a second


class PlanFiles(QObject):
    """Opening, saving and recovering the plan of the workspace's document."""

    def __init__(self, shell: Shell, session: PlanSession, plan_replaced: Callable[[], None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.shell, self.session = shell, session
        self.controller, self.document = session.controller, session.document
        self.settings, self.cases = session.settings, session.cases
        self._plan_replaced = plan_replaced  # a plan from a file replaces the one on screen
        self.autosave = Autosave()
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setSingleShot(True)
        self.autosave_timer.setInterval(AUTOSAVE_DELAY_MS)
        self.autosave_timer.timeout.connect(self.write_recovery)
        self._pending_plan: tuple[Plan, Path | None, bool] | None = None
        self._plan_after_load: Path | None = None

    def _status(self, text: str, ms: int) -> None:
        self.shell.statusBar().showMessage(text, ms)

    def plan_dir(self) -> str:
        return str(self.settings.value("files/plan_dir", str(Path.home())))

    # ---- opening -----------------------------------------------------------------------
    def open_plan_dialog(self) -> None:
        if self.controller.volume is None:
            self._status("Open the CT first, then its plan.", 10000)
            return
        path, _ = QFileDialog.getOpenFileName(self.shell, "Open plan", self.plan_dir(),
                                              OPEN_PLAN_FILTER)
        if path and self.confirm_discard("open another plan"):
            self.open_plan(path)

    def import_sr_dialog(self) -> None:
        if self.controller.volume is None:
            self._status("Open the CT first, then its plan.", 10000)
            return
        path, _ = QFileDialog.getOpenFileName(self.shell,
                                              "Import plan from DICOM SR", self.plan_dir(),
                                              "DICOM SR (*.dcm);;All (*)")
        if path and self.confirm_discard("import another plan"):
            self.open_plan(path)

    def open_plan(self, path: str | Path, *, force_other_frame: bool | None = None) -> bool:
        """Open a plan for the current CT; a plan of another CT needs an explicit yes."""
        volume = self.controller.volume
        if volume is None:
            return False
        with error_boundary(self.shell, "opening the plan"):
            plan = self.document.open(path)
            try:
                plan = check_frame(plan, volume.frame_of_reference_uid)
            except FrameMismatchError as exc:
                if force_other_frame is None:
                    force_other_frame = self._ask_other_frame(str(exc))
                if not force_other_frame:
                    self._status("The plan was not opened.", 10000)
                    return False
                plan = check_frame(plan, volume.frame_of_reference_uid, force_other_frame=True)
            # an SR or markups file is imported, not edited: saving writes a new plan file
            imported = not is_plan_file(path)
            if not plan.frame_of_reference_uid:  # markups carry no frame: this CT's
                plan = replace(plan, study_uid=volume.study_uid, series_uid=volume.series_uid,
                               frame_of_reference_uid=volume.frame_of_reference_uid)
            self.document.reset(plan, None if imported else Path(path),
                                dirty=imported or plan.frame_override is not None)
            self._plan_replaced()
            self.autosave.clear()
            return True
        return False

    def open_plan_after_load(self, path: str | Path) -> None:
        """Open ``path`` as soon as the CT being loaded is on screen (``open CT --plan``)."""
        self._plan_after_load = Path(path)

    def _ask_other_frame(self, message: str) -> bool:
        box = QMessageBox(QMessageBox.Icon.Warning, "Plan made on another CT",
                          message, QMessageBox.StandardButton.Cancel,
                          self.shell)
        box.setObjectName("otherFrameBox")
        apply = box.addButton("Apply anyway (override)", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is apply

    def volume_loaded(self, volume: Volume) -> None:
        """A CT is on screen (the session has given it a new plan): a plan recovered for
        this CT takes the new plan's place."""
        pending, self._pending_plan = self._pending_plan, None
        if pending is not None and (not pending[0].frame_of_reference_uid or
                                    pending[0].frame_of_reference_uid
                                    == volume.frame_of_reference_uid):
            plan, path, dirty = pending
            self.document.reset(plan, path, dirty=dirty)
            self._status(f"Recovered the unsaved plan ({len(plan.trajectories)} needles).",
                         20000)

    def open_plan_asked_for(self) -> None:
        """The plan asked for with the CT being loaded (`open_plan_after_load`), if any."""
        plan_path, self._plan_after_load = self._plan_after_load, None
        if plan_path is not None:
            self.open_plan(plan_path)

    # ---- saving ------------------------------------------------------------------------
    def save_plan(self) -> bool:
        if self.document.path is None:
            return self.save_plan_as()
        return self.save(self.document.path)

    def save_plan_as(self) -> bool:
        suggested = str(Path(self.plan_dir()) / f"plan{SUFFIX}")
        path, _ = QFileDialog.getSaveFileName(self.shell, "Save plan",
                                              suggested, PLAN_FILTER)
        if not path:
            return False
        if not path.endswith(SUFFIX):
            path += SUFFIX
        return self.save(Path(path))

    def save(self, path: Path) -> bool:
        """Write the plan to ``path``; False (after a message) when it cannot be written."""
        with error_boundary(self.shell, "saving the plan"):
            saved = self.document.save(path)
            self.cases.plan_saved(saved, self.document.plan, self.session.editor.results)
            self.settings.setValue("files/plan_dir", str(saved.parent))
            self.autosave.clear()
            self._status(f"Plan saved: {saved.name}", 10000)
            return True
        return False

    def confirm_discard(self, doing: str) -> bool:
        """Ask before unsaved edits would be lost; True to go on."""
        if not self.document.is_dirty:
            return True
        box = QMessageBox(QMessageBox.Icon.Question, "Unsaved plan",
                          f"The plan has unsaved changes. Save them before you {doing}?",
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel,
                          self.shell)
        box.setObjectName("unsavedBox")
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = box.exec()
        if answer == QMessageBox.StandardButton.Save:
            return self.save_plan()
        return answer == QMessageBox.StandardButton.Discard

    # ---- recovery ----------------------------------------------------------------------
    def plan_edited(self, dragging: bool) -> None:
        """Keep the edit on disk: at once (once the undo stack has taken it), so a crash
        now loses nothing of this action; a drag is one action, kept when it pauses."""
        self.autosave_timer.start(AUTOSAVE_DELAY_MS if dragging else 0)

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
            self._status("Could not write the recovery file (disk full or not writable): "
                         "save the plan to keep it.", 15000)

    def closing(self) -> None:
        """The window closes after the user agreed: nothing left to recover."""
        self.autosave_timer.stop()
        self.autosave.clear()

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
                          self.shell)
        box.setObjectName("recoveryBox")
        box.setDefaultButton(QMessageBox.StandardButton.Yes)
        if box.exec() == QMessageBox.StandardButton.Yes:
            if not Path(recovery.ct_source).exists():
                self._status(f"The CT of the recovered plan is no longer at "
                             f"{recovery.ct_source}.", 30000)
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
        self.shell.open_path(recovery.ct_source, recovery.series_uid or None)
