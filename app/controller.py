"""The controller: owns the current Volume, its bone surface and the shared view state.

Views never talk to each other: they emit intents, the controller updates its state and
emits one signal per change, and every view redraws from that. Loading and surface
extraction run in a private thread pool so the GUI never freezes; each request carries a
token, so the result of a request that was superseded (a second file opened while the first
was still loading) is dropped instead of replacing the newer one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal, Slot

from app.workers import Worker
from planning.errors import Cancelled, SeriesError
from planning.progress import Progress
from planning.spine_seed import spine_seed_lps
from planning.surface import BoneSurface, extract_bone_surface
from planning.volume import FloatArray, Volume
from widgets.window_level import WINDOW_PRESETS


class Controller(QObject):
    """Application state and long-running work, without any widget."""

    # loading (the GUI shows a progress dialog with Cancel between started and finished)
    load_started = Signal(str)  # what is being done, e.g. "Loading CT series…"
    load_progress = Signal(int, int, str)  # done, total, message
    load_finished = Signal()  # success, failure or cancel
    series_found = Signal(object)  # ScanResult with several series: the user must choose
    volume_loaded = Signal(object)  # Volume
    # bone surface (background: the user can read slices meanwhile)
    surface_started = Signal()
    surface_progress = Signal(int, int, str)
    surface_ready = Signal(object)  # BoneSurface
    # shared view state
    crosshair_changed = Signal(object)  # LPS ndarray (3,)
    window_level_changed = Signal(float, float)  # width HU, level HU
    # outcome of actions
    error_occurred = Signal(str, object)  # action ("loading the CT"), exception
    status_message = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._volume: Volume | None = None
        self._surface: BoneSurface | None = None
        self._crosshair_lps = np.zeros(3)
        self._window, self._level = WINDOW_PRESETS["Bone"]
        self._load: Worker | None = None
        self._load_action = ""
        self._surface_job: Worker | None = None
        self._token = 0
        # the pool does not own the workers (autoDelete off): they are kept here until
        # their run() has returned, so a superseded job is never freed while it runs
        self._workers: list[Worker] = []

    # ---- state -------------------------------------------------------------------
    @property
    def volume(self) -> Volume | None:
        return self._volume

    @property
    def surface(self) -> BoneSurface | None:
        return self._surface

    @property
    def crosshair_lps(self) -> FloatArray:
        return self._crosshair_lps.copy()

    @property
    def window_level(self) -> tuple[float, float]:
        return self._window, self._level

    @property
    def is_loading(self) -> bool:
        return self._load is not None

    def set_crosshair(self, point_lps: FloatArray) -> None:
        p = np.asarray(point_lps, dtype=np.float64)
        if np.array_equal(p, self._crosshair_lps):
            return
        self._crosshair_lps = p.copy()
        self.crosshair_changed.emit(self._crosshair_lps.copy())

    def set_window_level(self, window: float, level: float) -> None:
        window = max(1.0, float(window))
        if (window, float(level)) == (self._window, self._level):
            return
        self._window, self._level = window, float(level)
        self.window_level_changed.emit(self._window, self._level)

    def apply_preset(self, name: str) -> None:
        """Switch to a named window preset ("Bone", "Soft tissue")."""
        self.set_window_level(*WINDOW_PRESETS[name])

    def set_volume(self, volume: Volume) -> None:
        """Make ``volume`` current (also the entry point for tests) and build its surface."""
        self._volume = volume
        self._surface = None
        self.volume_loaded.emit(volume)
        self._crosshair_lps = np.array([np.nan] * 3)  # force the emit below
        self.set_crosshair(spine_seed_lps(volume))  # open the views on the spine
        if volume.warnings:
            self.status_message.emit(" · ".join(volume.warnings))
        self._start_surface(volume)

    # ---- opening files -------------------------------------------------------------
    def open_path(self, path: str | Path, series_uid: str | None = None) -> None:
        """Open a DICOM folder (asking for a series if it holds several) or a NIfTI file."""
        p = Path(path)
        if p.is_dir() and series_uid is None:
            self.open_dicom_folder(p)
            return
        from planning.io import load_path

        self._start_load(
            f"Loading {p.name}…", "loading the CT",
            lambda progress: load_path(p, series_uid=series_uid, progress=progress),
        )

    def open_dicom_folder(self, folder: str | Path) -> None:
        """Scan a folder; one series is loaded at once, several go to `series_found`."""
        folder = Path(folder)
        if not folder.is_dir():
            self.error_occurred.emit(
                "opening the DICOM folder", SeriesError(f"The folder {folder} does not exist.")
            )
            return
        from planning.io.dicom_series import scan_folder

        self._start_load(
            f"Reading DICOM folder {folder.name}…", "reading the DICOM folder",
            lambda progress: scan_folder(folder, progress=progress),
        )

    def open_series(self, info: Any) -> None:
        """Load one series chosen from a scan (a `SeriesInfo`)."""
        from planning.io.dicom_series import load_series

        self._start_load(
            "Loading CT series…", "loading the CT series",
            lambda progress: load_series(info, progress=progress),
        )

    def open_nifti(self, path: str | Path) -> None:
        from planning.io.nifti import load_nifti

        p = Path(path)
        self._start_load(
            f"Loading {p.name}…", "loading the NIfTI file",
            lambda progress: load_nifti(p, progress=progress),
        )

    def open_demo(self) -> None:
        """Open the synthetic demo CT (generated into the user cache on first use)."""

        def job(progress: Progress) -> Volume:
            from planning.demo.cache import demo_ct_path
            from planning.io import load_path

            return load_path(demo_ct_path(progress=progress), progress=progress)

        self._start_load("Opening the demo CT…", "opening the demo CT", job)

    def cancel_loading(self) -> None:
        if self._load is not None:
            self._load.cancel()

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Cancel running work and wait for the threads (call when the window closes)."""
        for worker in (self._load, self._surface_job):
            if worker is not None:
                worker.cancel()
        self._pool.waitForDone(timeout_ms)

    # ---- workers -------------------------------------------------------------------
    def _run(self, job: Callable[[Progress], Any]) -> Worker:
        self._workers = [w for w in self._workers if not w.done]
        self._token += 1
        worker = Worker(job, self._token)
        self._workers.append(worker)
        return worker

    def _start_load(
        self, label: str, action: str, job: Callable[[Progress], Any]
    ) -> None:
        if self._load is not None:
            self._load.cancel()  # a newer request replaces it; its result will be dropped
        worker = self._run(job)
        worker.signals.progressed.connect(self._on_load_progress)
        worker.signals.succeeded.connect(self._on_load_succeeded)
        worker.signals.failed.connect(self._on_load_failed)
        self._load, self._load_action = worker, action
        self.load_started.emit(label)
        self._pool.start(worker)

    def _is_current_load(self, token: int) -> bool:
        return self._load is not None and self._load.token == token

    @Slot(int, int, int, str)
    def _on_load_progress(self, token: int, done: int, total: int, message: str) -> None:
        if self._is_current_load(token):
            self.load_progress.emit(done, total, message)

    @Slot(int, object)
    def _on_load_succeeded(self, token: int, result: object) -> None:
        if not self._is_current_load(token):
            return
        self._load = None
        self.load_finished.emit()
        if isinstance(result, Volume):
            self.set_volume(result)
            return
        series = list(getattr(result, "series", []))
        if not series:
            self.error_occurred.emit(
                self._load_action,
                SeriesError("The folder contains no CT or other image series that can be opened."),
            )
        elif len(series) == 1:
            self.open_series(series[0])
        else:
            self.series_found.emit(result)

    @Slot(int, object)
    def _on_load_failed(self, token: int, exc: object) -> None:
        if not self._is_current_load(token):
            return
        self._load = None
        self.load_finished.emit()
        if isinstance(exc, Cancelled):
            self.status_message.emit("Loading cancelled.")
        else:
            self.error_occurred.emit(self._load_action, exc)

    def _start_surface(self, volume: Volume) -> None:
        if self._surface_job is not None:
            self._surface_job.cancel()
        worker = self._run(lambda progress: extract_bone_surface(volume, progress=progress))
        worker.signals.progressed.connect(self._on_surface_progress)
        worker.signals.succeeded.connect(self._on_surface_succeeded)
        worker.signals.failed.connect(self._on_surface_failed)
        self._surface_job = worker
        self.surface_started.emit()
        self._pool.start(worker)

    def _is_current_surface(self, token: int) -> bool:
        return self._surface_job is not None and self._surface_job.token == token

    @Slot(int, int, int, str)
    def _on_surface_progress(self, token: int, done: int, total: int, message: str) -> None:
        if self._is_current_surface(token):
            self.surface_progress.emit(done, total, message)

    @Slot(int, object)
    def _on_surface_succeeded(self, token: int, surface: object) -> None:
        if not self._is_current_surface(token):
            return
        self._surface_job = None
        assert isinstance(surface, BoneSurface)
        self._surface = surface
        self.surface_ready.emit(surface)

    @Slot(int, object)
    def _on_surface_failed(self, token: int, exc: object) -> None:
        if not self._is_current_surface(token):
            return
        self._surface_job = None
        if not isinstance(exc, Cancelled):
            self.error_occurred.emit("building the bone surface", exc)
