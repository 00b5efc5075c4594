"""Renders the fluoroscopy panel's DRRs in the background, latest request first.

Why its own thread: the attenuation volume takes about a second to build once per CT and
each 512² DRR about half a second on a large CT; the GUI must not wait for either. Only the
views that changed are rendered (a DRR depends on the CT and the C-arm geometry, not on the
needles, whose shadows the panes draw themselves), only while the panel is visible, and a
request that arrives while one renders replaces any older waiting one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThreadPool

from app.workers import JobSlot
from planning.drr import AttenuationVolume, render_drr, to_display
from planning.errors import Cancelled
from planning.fluoro_views import FluoroSetup, FluoroView, needle_views, standard_views
from planning.plan import Trajectory
from planning.progress import Progress
from planning.volume import Volume
from widgets.fluoro_view import FluoroFrame, FluoroPanel, geometry_key


class Fluoroscopy(QObject):
    """Keeps the panel's two panes showing the views that fit the current selection."""

    def __init__(self, panel: FluoroPanel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.panel = panel
        self.setup = FluoroSetup()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._volume: Volume | None = None
        self._attenuation: AttenuationVolume | None = None
        self._centre: np.ndarray | None = None
        self._trajectory: Trajectory | None = None
        self._job = JobSlot(self._pool, self)
        self._job.progressed.connect(lambda _d, _t, message: self.panel.set_status(f"{message}…"))
        self._job.succeeded.connect(self._on_done)
        self._job.failed.connect(self._on_failed)
        self._job_keys: list[tuple] = []
        self._waiting: list[FluoroView] | None = None
        self.renders = 0  # DRR batches rendered (tests and benchmarks read it)
        panel.mode_changed.connect(self._mode_changed)
        panel.set_message("No CT loaded")

    # ---- inputs -------------------------------------------------------------------------
    def set_volume(self, volume: Volume | None) -> None:
        """A new CT: everything rendered before belongs to the old one."""
        self._job.forget()
        self._job_keys, self._waiting = [], None
        self._volume, self._attenuation = volume, None
        self._centre, self._trajectory = None, None
        self.panel.set_frames([])
        self.panel.set_message("No CT loaded" if volume is None else
                               "Select a level or a needle to simulate fluoroscopy")

    def attenuation_for(self, volume: Volume) -> AttenuationVolume | None:
        """The attenuation volume already built for ``volume`` (None if not yet): the
        report's DRRs reuse it instead of building it again (~1 s)."""
        return self._attenuation if volume is self._volume else None

    def set_setup(self, setup: FluoroSetup) -> None:
        self.setup = setup
        self.refresh()

    def show(self, centre_lps: Any, trajectory: Trajectory | None) -> None:
        """The views to show: AP/lateral centred on ``centre_lps``; working views of
        ``trajectory`` (the selected needle, or None)."""
        self._centre = None if centre_lps is None else np.asarray(centre_lps, dtype=float)
        self._trajectory = trajectory
        self.refresh()

    def views(self) -> list[FluoroView]:
        """What the panel should show now (empty when there is nothing to show)."""
        if self.panel.mode == "working":
            return [] if self._trajectory is None else needle_views(self._trajectory, self.setup)
        return [] if self._centre is None else standard_views(self._centre, self.setup)

    def refresh(self) -> None:
        """Render what changed, if the panel is on screen (else when it is shown)."""
        if self._volume is None or not self.panel.isVisible():
            return
        views = self.views()
        if not views:
            self.panel.set_message("Select a needle to see its working views"
                                   if self.panel.mode == "working" else
                                   "Select a level or a needle to simulate fluoroscopy")
            return
        keys = [geometry_key(v.geometry) for v in views]
        if keys == self.panel.view_keys() or (self._job.busy and keys == self._job_keys):
            return
        if self._job.busy:
            self._waiting = views
            return
        self._start(views)

    def shutdown(self, timeout_ms: int = 5000) -> None:
        self._job.cancel()
        self._pool.waitForDone(timeout_ms)

    @property
    def is_busy(self) -> bool:
        return self._job.busy

    # ---- work ---------------------------------------------------------------------------
    def _mode_changed(self, _mode: str) -> None:
        self.refresh()

    def _start(self, views: list[FluoroView]) -> None:
        volume, attenuation, position = self._volume, self._attenuation, self.setup.position
        assert volume is not None

        def job(progress: Progress) -> tuple[Volume, AttenuationVolume, list[FluoroFrame]]:
            att = attenuation
            steps = len(views) + (att is None)
            if att is None:
                progress.report(0, steps, "Preparing simulated fluoroscopy")
                att = AttenuationVolume.from_volume(volume)
            frames = []
            for view in views:
                progress.report(steps - len(views) + len(frames), steps,
                                f"Simulating {view.title}")
                frames.append(FluoroFrame(view, to_display(render_drr(att, view.geometry)),
                                          position))
            return volume, att, frames

        self._job_keys = [geometry_key(v.geometry) for v in views]
        self._job.start(job)
        self.panel.set_status("Rendering…")

    def _finish(self) -> None:
        self._job_keys = []
        self.panel.set_status("")

    def _on_done(self, result: object) -> None:
        self._finish()
        volume, attenuation, frames = result  # type: ignore[misc]
        if volume is self._volume:
            self._attenuation = attenuation
            self.panel.set_frames(frames)
            self.renders += 1
        self._next()

    def _on_failed(self, exc: object) -> None:
        self._finish()
        if not isinstance(exc, Cancelled):
            self.panel.set_message(f"Simulated fluoroscopy failed: {exc}")
        self._next()

    def _next(self) -> None:
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            self.refresh()
