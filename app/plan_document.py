"""The current plan: one owner, changed only through the undo stack.

`PlanDocument` holds the immutable `Plan` on screen, its file, and the `QUndoStack` of edits.
Views never change it; the main window turns their intents into `edit` calls, each of which
pushes one `ReplacePlanCommand`. ``changed`` fires once per new plan, ``dirty_changed``
when the plan stops or starts matching what is on disk.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from app.commands import ReplacePlanCommand
from planning.interop.any_plan import load_any_plan
from planning.interop.plan_file import save_plan
from planning.plan import Plan

_drag_ids = itertools.count(1)


def new_drag_id() -> int:
    """A fresh id for one mouse drag: moves sharing it merge into one undo step."""
    return next(_drag_ids)


class PlanDocument(QObject):
    """The plan being edited, its file and its undo history."""

    changed = Signal(object)  # Plan
    dirty_changed = Signal(bool)
    path_changed = Signal(object)  # Path | None

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._plan = Plan()
        self._path: Path | None = None
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)

    def _on_clean_changed(self, clean: bool) -> None:
        self.dirty_changed.emit(not clean)

    @property
    def plan(self) -> Plan:
        return self._plan

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def is_dirty(self) -> bool:
        return not self.undo_stack.isClean()

    def _apply(self, plan: Plan) -> None:
        """Called by the commands only (redo/undo)."""
        if plan is self._plan:
            return
        self._plan = plan
        self.changed.emit(plan)

    def edit(self, after: Plan, text: str, *, drag_key: object | None = None,
             also: Callable[[bool], None] | None = None) -> None:
        """Make ``after`` the plan as one undoable step labelled ``text`` (``also``: see
        `ReplacePlanCommand`)."""
        if after == self._plan and drag_key is None and also is None:
            return
        self.undo_stack.push(ReplacePlanCommand(self._apply, self._plan, after, text,
                                                drag_key=drag_key, also=also))

    def reset(self, plan: Plan, path: Path | None = None, *, dirty: bool = False) -> None:
        """Start afresh with ``plan`` (a new CT, an opened file): no undo history."""
        self.undo_stack.clear()
        self._path = path
        self.path_changed.emit(path)
        self._apply(plan)
        if dirty:  # a recovered plan is not on disk: make the stack unclean
            self.undo_stack.push(ReplacePlanCommand(self._apply, Plan(), plan,
                                                    "Recover unsaved plan"))
            self.undo_stack.resetClean()
        self.dirty_changed.emit(self.is_dirty)

    def open(self, path: str | Path) -> Plan:
        """Read a plan file, ``.vplan.json`` or DICOM SR (validated; raises
        `PlanFormatError` naming the file)."""
        return load_any_plan(path)

    def save(self, path: str | Path | None = None) -> Path:
        """Write the plan atomically to ``path`` (or its current file) and mark it clean."""
        target = Path(path) if path is not None else self._path
        if target is None:
            raise ValueError("no file name given for the plan")
        saved = save_plan(self._plan, target)
        if saved != self._path:
            self._path = saved
            self.path_changed.emit(saved)
        self.undo_stack.setClean()
        return saved
