"""Plan editing: turns the views' intents into undoable plan edits and keeps the checks live.

The views emit what the user did (a needle's handle dragged to a point, a click while
placing, a needle picked); `PlanEditor` decides what that means for the plan, pushes one
command on the document's undo stack, re-runs the checks (≈1 ms per needle, cached by
value) and hands every view the same `NeedleDisplay` list. It owns the selection and the
placing state, nothing else: the plan lives in `PlanDocument`, the anatomy in `Controller`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.controller import Controller
from app.plan_document import PlanDocument, new_drag_id
from planning.checks import CheckResult, SafetyLimits
from planning.plan import DEFAULT_GAUGE, Plan, PlanError, Side, Trajectory, shift_level
from widgets.plan_display import NeedleDisplay

Key = tuple[str, Side]
MIN_NEEDLE_MM = 5.0  # a second click closer than this to the entry is not a needle


def _value_key(t: Trajectory | None) -> tuple | None:
    return None if t is None else (t.level, t.side, t.entry_lps, t.target_lps, t.gauge)


def _summary(t: Trajectory, res: CheckResult | None) -> str:
    """A needle's tooltip: verdict, clearance and grade, and every reason in words."""
    if res is None:
        return f"{t.label} ({t.gauge}): not checked — no anatomy for this CT"
    head = (f"{t.label} ({t.gauge}): {res.status.value.upper()} — canal clearance "
            f"{res.canal_clearance_mm:.1f} mm, grade {res.breach_grade}")
    if res.vessel_clearance_mm is not None:
        head += f"; nearest contrast-filled vessel {res.vessel_clearance_mm:.1f} mm"
    return "\n".join([head, *(f"• {r}" for r in res.reasons)])


def _vessel_if_limiting(res: CheckResult | None) -> float | None:
    """The needle's distance to a contrast-filled vessel when that is within its caution
    distance (then it is the number to show), else None."""
    if res is None or res.vessel_clearance_mm is None:
        return None
    return res.vessel_clearance_mm if res.vessel_clearance_mm < VESSEL_CAUTION_MM else None


VESSEL_CAUTION_MM = SafetyLimits().vessel_caution_mm


class PlanEditor(QObject):
    """Selection, placing and drags → plan edits; plan + anatomy → checks and displays."""

    needles_changed = Signal(list)  # list[NeedleDisplay], for every view
    results_changed = Signal(object)  # dict Key → CheckResult (empty without anatomy)
    selection_changed = Signal(object)  # Key | None
    placing_changed = Signal(bool, object)  # placing?, pending entry (LPS) or None
    message = Signal(str)

    def __init__(self, controller: Controller, document: PlanDocument,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.document = document
        self.gauge = DEFAULT_GAUGE
        self._selected: Key | None = None
        self._placing: Key | None = None
        self._pending_entry: np.ndarray | None = None
        self._drag_id = new_drag_id()
        self._dragging = False
        self.locked = False
        """True while the plan must not change (a training attempt after submission)."""
        self._cache: dict[tuple, CheckResult] = {}
        self._results: dict[Key, CheckResult] = {}
        document.changed.connect(self.refresh)
        controller.anatomy_ready.connect(self._on_anatomy)

    # ---- state -------------------------------------------------------------------
    @property
    def plan(self) -> Plan:
        return self.document.plan

    @property
    def selected(self) -> Key | None:
        return self._selected

    @property
    def results(self) -> dict[Key, CheckResult]:
        return dict(self._results)

    @property
    def placing(self) -> Key | None:
        return self._placing

    def result(self, key: Key) -> CheckResult | None:
        return self._results.get(key)

    # ---- selection ---------------------------------------------------------------
    def select(self, level: str | None, side: Side | None = None) -> None:
        key = None if level is None or side is None else (level, Side.parse(side))
        if key == self._selected:
            return
        self._selected = key
        self.selection_changed.emit(key)
        self.needles_changed.emit(self.displays())

    # ---- placing a new needle ----------------------------------------------------------
    def start_placing(self, level: str, side: Side) -> None:
        """The next two clicks in any slice view are the entry and the target."""
        if self.locked:
            return
        self._placing = (level, Side.parse(side))
        self._pending_entry = None
        self.placing_changed.emit(True, None)
        self.message.emit(f"Placing {level} {self._placing[1].value}: click the ENTRY point "
                          "(Esc cancels)")

    def cancel_placing(self) -> None:
        if self._placing is None:
            return
        self._placing, self._pending_entry = None, None
        self.placing_changed.emit(False, None)
        self.message.emit("Placing cancelled.")

    def point_placed(self, point_lps: np.ndarray) -> None:
        if self._placing is None or self.locked:
            return
        p = np.asarray(point_lps, dtype=np.float64)
        if self._pending_entry is None:
            self._pending_entry = p
            self.placing_changed.emit(True, p)
            self.message.emit("Now click the TARGET (the tip, in the anterior third of the "
                              "body)")
            return
        if float(np.linalg.norm(p - self._pending_entry)) < MIN_NEEDLE_MM:
            self.message.emit(f"The target must be at least {MIN_NEEDLE_MM:.0f} mm from the "
                              "entry: click farther away.")
            return
        level, side = self._placing
        entry = self._pending_entry
        self._placing, self._pending_entry = None, None
        self.placing_changed.emit(False, None)
        existing = self.plan.get(level, side)
        gauge = existing.gauge if existing is not None else self.gauge
        t = Trajectory(level, side, tuple(entry), tuple(p), gauge)
        verb = "Replace" if existing is not None else "Place"
        self._selected = t.key
        self.document.edit(self.plan.with_trajectory(t), f"{verb} {level} {side.value} needle")
        self.selection_changed.emit(t.key)
        res = self._results.get(t.key)
        verdict = "" if res is None else f": {res.status.value}, canal clearance " \
            f"{res.canal_clearance_mm:.1f} mm"
        self.message.emit(f"{verb}d {level} {side.value} needle{verdict}.")

    # ---- editing -------------------------------------------------------------------
    def drag(self, level: str, side: Side, part: str, point_lps: np.ndarray) -> None:
        """A handle (or the whole needle) dragged to a point; one drag = one undo step."""
        t = self.plan.get(level, side)
        if t is None or self.locked:
            return
        self._dragging = True
        p = tuple(float(v) for v in point_lps)
        if part == "entry":
            moved, what = t.moved(entry_lps=p), "entry"
        elif part == "target":
            moved, what = t.moved(target_lps=p), "target"
        else:
            moved, what = t.translated(np.asarray(p) - t.entry), "needle"
        if (level, Side.parse(side)) != self._selected:
            self._selected = t.key
            self.selection_changed.emit(t.key)
        self.document.edit(self.plan.with_trajectory(moved),
                           f"Move {level} {t.side.value} {what}",
                           drag_key=(self._drag_id, t.key, part))

    def drag_finished(self) -> None:
        self._drag_id = new_drag_id()
        self._dragging = False
        self.needles_changed.emit(self.displays())  # views that skipped frames catch up

    @property
    def is_dragging(self) -> bool:
        return self._dragging

    def remove(self, level: str, side: Side | None = None) -> None:
        """Delete one needle (or both of a level)."""
        if self.locked:
            return
        if side is None and level not in self.plan.levels:
            return
        if side is not None and self.plan.get(level, side) is None:
            return
        what = f"{level} needles" if side is None else f"{level} {Side.parse(side).value} needle"
        if self._selected is not None and self._selected[0] == level and (
                side is None or self._selected[1] == Side.parse(side)):
            self._selected = None
            self.selection_changed.emit(None)
        self.document.edit(self.plan.without(level, side), f"Delete {what}")

    def set_gauge(self, gauge: str, *, apply_to_selected: bool = False) -> None:
        """The gauge of new needles; optionally also of the selected needle (undoable)."""
        self.gauge = gauge
        if apply_to_selected and self._selected is not None and not self.locked:
            t = self.plan.get(*self._selected)
            if t is not None and t.gauge != gauge:
                self.document.edit(self.plan.with_trajectory(dataclasses.replace(t, gauge=gauge)),
                                   f"{t.level} {t.side.value} needle: {gauge}")

    def accept_proposal(self, plan: Plan, levels: list[str]) -> None:
        """Replace the needles of ``levels`` by the proposal's (one undo step)."""
        if self.locked:
            return
        merged = self.plan
        for level in levels:
            merged = merged.without(level)
        for t in plan.trajectories:
            merged = merged.with_trajectory(t)
        if not merged.frame_of_reference_uid:
            merged = dataclasses.replace(merged, study_uid=plan.study_uid,
                                         series_uid=plan.series_uid,
                                         frame_of_reference_uid=plan.frame_of_reference_uid)
        self.document.edit(merged, f"Propose {', '.join(levels)}")

    def shift_labels(self, n: int) -> None:
        """Rename every planned needle's level by ``n`` along with the anatomy's labels."""
        if n == 0:
            return
        try:
            moved = tuple(dataclasses.replace(t, level=shift_level(t.level, n))
                          for t in self.plan.trajectories)
        except PlanError as exc:
            self.message.emit(f"Cannot shift the labels: {exc}.")
            return
        if self._selected is not None:
            self._selected = (shift_level(self._selected[0], n), self._selected[1])

        def rename_anatomy(redo: bool) -> None:
            self.controller.shift_labels(n if redo else -n)

        self.document.edit(dataclasses.replace(self.plan, trajectories=moved),
                           f"Shift level labels {n:+d}", also=rename_anatomy)

    # ---- checks and displays ---------------------------------------------------------
    def _on_anatomy(self, _anatomy: object) -> None:
        self._cache.clear()
        self.refresh()

    def refresh(self, *_args: object) -> None:
        """Re-check what changed (cached by value: a drag re-checks one or two needles)."""
        plan = self.plan
        results: dict[Key, CheckResult] = {}
        if self.controller.check_context is not None:
            for t in plan.trajectories:
                other = plan.get(t.level, Side.RIGHT if t.side is Side.LEFT else Side.LEFT)
                key = (_value_key(t), _value_key(other))
                res = self._cache.get(key)
                if res is None:
                    res = self.controller.check(t, plan)
                    if res is None:
                        break
                    self._cache[key] = res
                results[t.key] = res
            if len(self._cache) > 4000:
                self._cache.clear()
        self._results = results
        if self._selected is not None and plan.get(*self._selected) is None:
            self._selected = None
            self.selection_changed.emit(None)
        self.results_changed.emit(dict(results))
        self.needles_changed.emit(self.displays())

    def displays(self) -> list[NeedleDisplay]:
        out = []
        for t in self.plan.trajectories:
            res = self._results.get(t.key)
            out.append(NeedleDisplay(
                level=t.level, side=t.side, entry_lps=t.entry, target_lps=t.target,
                radius_mm=t.radius_mm, status=None if res is None else res.status,
                clearance_mm=None if res is None else res.canal_clearance_mm,
                vessel_mm=_vessel_if_limiting(res),
                selected=t.key == self._selected,
                summary=_summary(t, res),
            ))
        return out
