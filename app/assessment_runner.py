"""Keeps the per-level clinical assessment of the open CT up to date, in the background.

Why its own thread and two stages: the fracture assessment and the pedicle morphometry take
a few seconds once per anatomy (and gauge); the cement previews and the tip-dependent
leakage flags follow the needles and take a fraction of a second. The expensive stage is
cached; the cheap one re-runs a moment after the needles stop changing, latest wins.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal

from app.workers import JobSlot
from planning.anatomy.model import Anatomy
from planning.assessment.cement import DEFAULT_FILL_RANGE
from planning.errors import Cancelled
from planning.plan import Trajectory
from planning.progress import Progress
from planning.volume import Volume

SETTLE_MS = 600  # after the last needle change


_MEASURED: weakref.WeakKeyDictionary[Anatomy, tuple[weakref.ref[Volume], str, Any, Any]] = (
    weakref.WeakKeyDictionary())
"""The fracture grades and pedicle measurements of each anatomy (with the CT and gauge they
were made on), for every runner of this process, for as long as the anatomy lives: they
depend on nothing else, and a needle edit, a second window on the same CT or a return to it
need not measure every body again (≈ 2 s on the demo CT). An anatomy is never changed in
place (a label shift makes a new one), so its identity stands for its content."""


def _measured(volume: Volume, anatomy: Anatomy, gauge: str) -> tuple[Any, Any] | None:
    entry = _MEASURED.get(anatomy)
    if entry is None or entry[0]() is not volume or entry[1] != gauge:
        return None
    return entry[2], entry[3]


class AssessmentRunner(QObject):
    """Emits `ready` with ``{level: LevelAssessment}`` (fractured first) for the inputs."""

    ready = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._inputs: tuple[Volume, Anatomy, tuple[Trajectory, ...], str] | None = None
        self.fill_range = DEFAULT_FILL_RANGE  # of the cement plans (settings)
        self._job = JobSlot(self._pool, self)
        self._job.succeeded.connect(self._on_done)
        self._job.failed.connect(self._on_failed)
        self._pending = False
        self.result: dict[str, Any] = {}
        self.runs = 0  # assessments delivered (tests read it)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SETTLE_MS)
        self._timer.timeout.connect(self._start)

    def update(self, volume: Volume | None, anatomy: Anatomy | None,
               trajectories: Sequence[Trajectory], gauge: str, *, now: bool = False) -> None:
        """New inputs: assess again once they settle (``now``: without waiting)."""
        if volume is None or anatomy is None:
            self._inputs, self.result = None, {}
            self._timer.stop()
            return
        if self._inputs is not None and self._inputs[1] is not anatomy:
            self.result = {}
        self._inputs = (volume, anatomy, tuple(trajectories), gauge)
        if now:
            self._timer.stop()
            self._start()
        else:
            self._timer.start()

    def result_for(self, anatomy: Anatomy | None, trajectories: Sequence[Trajectory]
                   ) -> dict[str, Any] | None:
        """The assessment delivered for ``anatomy`` and these needles, if it is the latest
        and nothing newer is pending; else None."""
        if self.is_busy or self._inputs is None or anatomy is None or not self.result:
            return None
        _volume, assessed, needles, _gauge = self._inputs
        if assessed is not anatomy or needles != tuple(trajectories):
            return None
        return dict(self.result)

    @property
    def is_busy(self) -> bool:
        return self._job.busy or self._timer.isActive()

    def _start(self) -> None:
        if self._inputs is None:
            return
        if self._job.busy:
            self._pending = True
            return
        volume, anatomy, needles, gauge = self._inputs
        fill_range = self.fill_range
        cached = _measured(volume, anatomy, gauge)

        def job(progress: Progress) -> tuple[Anatomy, str, Any, Any, dict[str, Any]]:
            from planning.assessment import assess_fractures
            from planning.assessment.levels import assess_levels
            from planning.assessment.pedicle_morphometry import pedicle_morphometry

            # each step reports per level, so a Close or a new CT stops it within one
            # level's work instead of waiting for the whole assessment (≈ 1 s)
            if cached is not None:
                fractures, pedicles = cached
            else:
                fractures = assess_fractures(volume, anatomy, progress.part(0, 1, 2))
                progress.check_cancelled()
                pedicles = pedicle_morphometry(anatomy, gauge)
            result = assess_levels(volume, anatomy, needles, gauge=gauge,
                                   fill_range=fill_range, fractures=fractures,
                                   pedicles=pedicles, progress=progress.part(1, 1, 2))
            return anatomy, gauge, fractures, pedicles, result

        self._job.start(job)

    def _on_done(self, result: object) -> None:
        anatomy, gauge, fractures, pedicles, levels = result  # type: ignore[misc]
        inputs = self._inputs
        if inputs is not None and inputs[1] is anatomy:  # still the anatomy on screen
            _MEASURED[anatomy] = (weakref.ref(inputs[0]), gauge, fractures, pedicles)
            self.result = levels
            self.runs += 1
            self.ready.emit(levels)
        self._next()

    def _on_failed(self, exc: object) -> None:
        if not isinstance(exc, Cancelled):
            self.failed.emit(f"The level assessment failed: {exc}")
        self._next()

    def _next(self) -> None:
        if self._pending:
            self._pending = False
            self._start()

    def shutdown(self, timeout_ms: int = 5000) -> None:
        self._timer.stop()
        self._job.cancel()
        self._pool.waitForDone(timeout_ms)
