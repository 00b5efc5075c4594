"""Undo commands: every plan edit is a swap of two immutable `Plan` snapshots.

The plan is small, so a command keeps the plan before and after instead of replaying an
edit. Moves within one drag share a ``drag_key`` and merge into one Edit-menu step; a drag
that ends where it began becomes obsolete and drops out of the stack.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand

from planning.plan import Plan

MERGE_ID = 1  # every mergeable command shares this id; the drag key decides


class ReplacePlanCommand(QUndoCommand):
    """Swap one Plan snapshot for another; the text is the Edit-menu label."""

    def __init__(
        self,
        apply: Callable[[Plan], None],
        before: Plan,
        after: Plan,
        text: str,
        *,
        drag_key: object | None = None,
        also: Callable[[bool], None] | None = None,
    ) -> None:
        """``also(redo)`` runs after each redo (True) and undo (False): for an edit that
        changes state beside the plan too (the anatomy's level names)."""
        super().__init__(text)
        self._apply = apply
        self._before, self._after = before, after
        self._drag_key = drag_key
        self._also = also

    @property
    def after(self) -> Plan:
        return self._after

    def redo(self) -> None:
        self._apply(self._after)
        if self._also is not None:
            self._also(True)

    def undo(self) -> None:
        self._apply(self._before)
        if self._also is not None:
            self._also(False)

    def id(self) -> int:
        return -1 if self._drag_key is None else MERGE_ID

    def mergeWith(self, other: QUndoCommand) -> bool:  # Qt override (camelCase)
        if not isinstance(other, ReplacePlanCommand) or other._drag_key != self._drag_key:
            return False
        self._after = other._after
        self.setObsolete(self._after == self._before)
        return True
