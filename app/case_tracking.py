"""Keeps the case list (`planning.case_list`) up to date from what happens in the window.

Why apart from the workspace: recording is a side effect of opening, saving and exporting,
and must never stand in their way; a case list that cannot be written (a read-only home, a
damaged file) costs one status-bar message, not the user's work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from planning.case_list import CaseList, CaseListError, CaseRecord, CaseRow
from planning.checks import CheckResult, Status
from planning.plan import Plan
from planning.volume import Volume

log = logging.getLogger(__name__)


def plan_state(plan: Plan, results: Mapping[Any, CheckResult]) -> str:
    """"checked" when every needle has been checked and none is unsafe, else "draft"."""
    if plan.trajectories and len(results) >= len(plan.trajectories) and \
            all(r.status is not Status.UNSAFE for r in results.values()):
        return "checked"
    return "draft"


class CaseTracker:
    """Records opened CTs and their plans; ``warn`` shows a one-line problem to the user."""

    def __init__(self, warn: Callable[[str], None], path: str | Path | None = None) -> None:
        self.warn = warn
        self.path = path
        self._db: CaseList | None = None
        self._failed = False
        self.case_id: int | None = None

    def database(self) -> CaseList | None:
        if self._db is None and not self._failed:
            try:
                self._db = CaseList(self.path)
            except CaseListError as exc:
                self._failure(exc)
        return self._db

    def _failure(self, exc: CaseListError) -> None:
        self._failed = True
        log.warning("case list disabled: %s", type(exc).__name__)
        self.warn(f"{exc} Cases are not recorded this session.")

    def _run(self, action: Callable[[CaseList], Any]) -> Any:
        db = self.database()
        if db is None:
            return None
        try:
            return action(db)
        except CaseListError as exc:
            self._failure(exc)
            return None

    def ct_opened(self, volume: Volume, source_node: str | None, is_demo: bool) -> None:
        p = volume.patient
        if source_node:  # retrieved: reopened from the cache, or the PACS again
            source = "pacs"
        elif is_demo:
            source = "demo"
        else:
            source = "nifti" if volume.source.endswith((".nii", ".nii.gz")) else "folder"
        record = CaseRecord(volume.source, source, volume.study_uid, volume.series_uid,
                            p.patient_id, p.name, p.study_date,
                            p.study_description or p.series_description, p.accession_number,
                            source_node or "")
        self.case_id = self._run(lambda db: db.record_open(record))

    def plan_saved(self, path: Path, plan: Plan, results: Mapping[Any, CheckResult]) -> None:
        if self.case_id is not None:
            case_id, state = self.case_id, plan_state(plan, results)
            self._run(lambda db: db.record_plan(case_id, path, state,
                                                needles=len(plan.trajectories), saved=True))

    def plan_exported(self, path: Path | None, sent: bool) -> None:
        """An export of the saved, unchanged plan at ``path`` (None: nothing to record)."""
        if self.case_id is not None and path is not None:
            case_id = self.case_id
            self._run(lambda db: db.record_plan(case_id, path, "sent" if sent else "exported"))

    def rows(self, text: str = "", state: str = "", sort: str = "changed",
             descending: bool = True) -> list[CaseRow]:
        return self._run(lambda db: db.cases(text, state=state, sort=sort,
                                             descending=descending)) or []

    def forget(self, case_id: int) -> None:
        self._run(lambda db: db.remove(case_id))


def show_case_list(parent: Any, tracker: CaseTracker,
                   open_case: Callable[[CaseRow], str | None]) -> Any:
    """File ▸ Cases…: the dialog, filled from ``tracker``; ``open_case(row)`` opens a case
    and returns None, or a sentence saying why it cannot."""
    from widgets.case_list_dialog import CaseListDialog

    dialog = CaseListDialog(parent)

    def refresh(text: str, state: str, sort: str, descending: bool) -> None:
        dialog.show_rows(tracker.rows(text, state, sort, descending))

    def open_row(row: CaseRow) -> None:
        problem = open_case(row)
        if problem:
            dialog.show_message(problem)
        else:
            dialog.accept()

    def forget(row: CaseRow) -> None:
        tracker.forget(row.case_id)
        dialog.refresh()

    dialog.refresh_requested.connect(refresh)
    dialog.open_requested.connect(open_row)
    dialog.forget_requested.connect(forget)
    dialog.refresh()
    dialog.show()
    return dialog
