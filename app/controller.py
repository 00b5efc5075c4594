"""The controller: owns the current Volume, its bone surface and the shared view state.

Views never talk to each other: they emit intents, the controller updates its state and
emits one signal per change, and every view redraws from that. Loading and surface
extraction run in a private thread pool so the GUI never freezes; each kind of work has one
`JobSlot`, so the result of a request that was superseded (a second file opened while the
first was still loading) is dropped instead of replacing the newer one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal

from app.logs import REDACTOR
from app.workers import JobSlot
from planning.anatomy.model import Anatomy
from planning.checks import CheckContext, CheckResult, SafetyLimits, check
from planning.errors import Cancelled, SeriesError, VertebroPlanError
from planning.mask_reslice import Mesh, mask_mesh
from planning.plan import Plan, Side, Trajectory
from planning.progress import Progress
from planning.spine_seed import spine_seed_lps
from planning.surface import BoneSurface, extract_bone_surface, not_bone_mask
from planning.vocabulary import WINDOW_PRESETS
from planning.volume import FloatArray, Volume

log = logging.getLogger("vertebroplan")

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
    # anatomy + check context (background, after each load; the user can read slices)
    anatomy_started = Signal(str)  # what is being done
    anatomy_progress = Signal(int, int, str)
    anatomy_ready = Signal(object)  # Anatomy (its CheckContext is `check_context`)
    anatomy_finished = Signal()  # success, failure or cancel
    anatomy_unavailable = Signal(str)  # why there is no anatomy (no spine, cancelled, error)
    # automatic proposals (background)
    proposal_started = Signal(str)
    proposal_progress = Signal(int, int, str)
    proposal_ready = Signal(object)  # planning.autoplan.Proposal
    proposal_finished = Signal()
    # other background tasks (exports, sending): one at a time
    task_started = Signal(str)
    task_progress = Signal(int, int, str)
    task_finished = Signal()
    task_succeeded = Signal(str, object)  # action, result
    # outcome of actions
    error_occurred = Signal(str, object)  # action ("loading the CT"), exception
    status_message = Signal(str)

    def __init__(self, parent: QObject | None = None, *, auto_anatomy: bool = True) -> None:
        """``auto_anatomy``: find the spine after every load (off in tests that set the
        anatomy themselves)."""
        super().__init__(parent)
        self.auto_anatomy = auto_anatomy
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._volume: Volume | None = None
        self._surface: BoneSurface | None = None
        self._crosshair_lps = np.zeros(3)
        self._window, self._level = WINDOW_PRESETS["Bone"]
        self._load = self._slot(self._on_load_succeeded, self._on_load_failed,
                                self.load_progress)
        self._load_action = ""
        self._surface_job = self._slot(self._on_surface_succeeded, self._on_surface_failed,
                                       self.surface_progress)
        self._anatomy: Anatomy | None = None
        self._found_anatomy: Anatomy | None = None  # before any label shift
        self._label_shift = 0
        self._anatomy_is_found = False
        self._canal_mesh: Mesh | None = None
        self._limits = SafetyLimits()
        self._context: CheckContext | None = None
        self._anatomy_job = self._slot(self._on_anatomy_succeeded, self._on_anatomy_failed,
                                       self.anatomy_progress)
        self._importing: str | None = None  # the segmentation file being imported
        self._proposal_job = self._slot(self._on_proposal_succeeded, self._on_proposal_failed,
                                        self.proposal_progress)
        self._task_job = self._slot(self._on_task_succeeded, self._on_task_failed,
                                    self.task_progress)
        self._task_action = ""

    def _slot(self, succeeded: Callable[[object], None], failed: Callable[[object], None],
              progress: Any) -> JobSlot:
        slot = JobSlot(self._pool, self)
        slot.progressed.connect(progress)
        slot.succeeded.connect(succeeded)
        slot.failed.connect(failed)
        return slot

    # ---- state -------------------------------------------------------------------
    @property
    def volume(self) -> Volume | None:
        return self._volume

    @property
    def surface(self) -> BoneSurface | None:
        return self._surface

    @property
    def anatomy(self) -> Anatomy | None:
        return self._anatomy

    @property
    def check_context(self) -> CheckContext | None:
        return self._context

    @property
    def is_finding_anatomy(self) -> bool:
        return self._anatomy_job.busy

    @property
    def is_proposing(self) -> bool:
        return self._proposal_job.busy

    @property
    def crosshair_lps(self) -> FloatArray:
        return self._crosshair_lps.copy()

    @property
    def window_level(self) -> tuple[float, float]:
        return self._window, self._level

    @property
    def is_loading(self) -> bool:
        return self._load.busy

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

    def set_volume(self, volume: Volume, *, find_spine: bool = True) -> None:
        """Make ``volume`` current (also the entry point for tests) and build its surface.

        ``find_spine=False``: the caller brings the anatomy (a training case's)."""
        REDACTOR.set_patient(volume.patient)  # before anything can log about this CT
        log.info("CT loaded: %s voxels, %s mm, %s", "×".join(map(str, volume.size)),
                 "×".join(f"{v:.2f}" for v in volume.spacing_mm), volume.modality)
        self._volume = volume
        self._surface = None
        self._anatomy, self._context, self._found_anatomy = None, None, None
        self._canal_mesh = None
        self._label_shift = 0
        self.volume_loaded.emit(volume)
        self._crosshair_lps = np.array([np.nan] * 3)  # force the emit below
        self.set_crosshair(spine_seed_lps(volume))  # open the views on the spine
        if volume.warnings:
            self.status_message.emit(" · ".join(volume.warnings))
        self._start_surface(volume)
        if self.auto_anatomy and find_spine:
            self.find_anatomy()

    # ---- anatomy, checks, proposals ----------------------------------------------------
    def check(self, trajectory: Trajectory, plan: Plan) -> CheckResult | None:
        """The check of one trajectory (≈1 ms: runs on every mouse move), or None while
        there is no anatomy."""
        if self._context is None:
            return None
        return check(trajectory, self._context, plan)

    def check_all(self, plan: Plan) -> dict[tuple[str, Side], CheckResult]:
        if self._context is None:
            return {}
        return {t.key: check(t, self._context, plan) for t in plan.trajectories}

    def find_anatomy(self, shift_labels: int = 0) -> None:
        """Find canal, vertebrae and levels in the current CT, then prepare the checks."""
        volume, limits = self._volume, self._limits
        if volume is None:
            return
        self._importing = None

        def job(progress: Progress) -> tuple[Anatomy, CheckContext, Mesh]:
            from planning.anatomy_source import AnatomySource, load_anatomy

            anatomy = load_anatomy(volume, AnatomySource(shift_labels=shift_labels), progress)
            progress.report(9, 10, "Preparing the safety checks")
            context = CheckContext.build(volume, anatomy, limits)
            return anatomy, context, mask_mesh(anatomy.canal, anatomy.affine_lps)

        self._start_anatomy("Finding the spine…", job, found=True)

    def shift_labels(self, n: int) -> None:
        """Rename every level ``n`` places caudally (+) or cranially (−).

        Shifts add up and always apply to the anatomy as found, so a shift and its undo
        in quick succession (while the first is still being prepared) cancel exactly.
        """
        volume, base = self._volume, self._found_anatomy
        if volume is None or base is None or n == 0:
            return
        self._label_shift += n
        total = self._label_shift
        canal_mesh, limits = self._canal_mesh, self._limits

        def job(progress: Progress) -> tuple[Anatomy, CheckContext, Mesh]:
            from planning.anatomy.from_ct import shift_anatomy_labels

            progress.report(0, 2, "Renaming the levels")
            shifted = shift_anatomy_labels(base, total) if total else base
            progress.report(1, 2, "Preparing the safety checks")
            return shifted, CheckContext.build(volume, shifted, limits), canal_mesh

        self._start_anatomy(f"Renaming the levels ({total:+d})…", job)

    @property
    def label_shift(self) -> int:
        """Levels the user shifted the labels by, from the anatomy as found."""
        return self._label_shift

    def set_anatomy(self, anatomy: Anatomy, context: CheckContext | None = None,
                    canal_mesh: Mesh | None = None) -> None:
        """Make ``anatomy`` the spine as found, unshifted (also the entry point for tests
        and imported label maps)."""
        if self._volume is None:
            return
        self._found_anatomy, self._label_shift = anatomy, 0
        context = context or CheckContext.build(self._volume, anatomy, self._limits)
        self._show_anatomy(anatomy, context,
                           canal_mesh or mask_mesh(anatomy.canal, anatomy.affine_lps))

    def _show_anatomy(self, anatomy: Anatomy, context: CheckContext, canal_mesh: Mesh) -> None:
        self._anatomy, self._context, self._canal_mesh = anatomy, context, canal_mesh
        log.info("Anatomy ready: levels %s", ", ".join(anatomy.levels) or "none")
        self.anatomy_ready.emit(anatomy)

    @property
    def limits(self) -> SafetyLimits:
        return self._limits

    def set_limits(self, limits: SafetyLimits) -> None:
        """New check thresholds (from the settings); every needle is checked again."""
        self._limits = limits
        if self._context is not None and self._anatomy is not None:
            self._context.limits = limits
            self.anatomy_ready.emit(self._anatomy)

    @property
    def canal_mesh(self) -> Mesh | None:
        """The canal's surface (vertices, triangles, normals in LPS) for the 3D view."""
        return self._canal_mesh

    def cancel_anatomy(self) -> None:
        self._anatomy_job.cancel()

    def propose(self, levels: list[str], gauge: str) -> None:
        """Propose bilateral trajectories for ``levels`` in the background."""
        volume, anatomy, ctx = self._volume, self._anatomy, self._context
        if volume is None or anatomy is None or ctx is None:
            self.status_message.emit("The spine has not been found yet: nothing to propose.")
            return

        def job(progress: Progress) -> object:
            from planning.autoplan import propose

            return propose(volume, anatomy, ctx, levels, gauge, progress)

        self._proposal_job.start(job)
        self.proposal_started.emit(f"Proposing {', '.join(levels)}…")

    @property
    def is_busy_with_task(self) -> bool:
        return self._task_job.busy

    def run_task(self, label: str, action: str, job: Callable[[Progress], Any]) -> bool:
        """Run ``job`` in the background (an export, a send); False if one is running."""
        if self._task_job.busy:
            self.status_message.emit("Another export is still running: wait or cancel it.")
            return False
        self._task_action = action
        self._task_job.start(job)
        self.task_started.emit(label)
        return True

    def cancel_task(self) -> None:
        self._task_job.cancel()

    def _on_task_succeeded(self, result: object) -> None:
        self.task_finished.emit()
        written = len(getattr(result, "written", []))
        log.info("Finished %s (%d file(s) written)", self._task_action, written)
        self.task_succeeded.emit(self._task_action, result)

    def _on_task_failed(self, exc: object) -> None:
        self.task_finished.emit()
        if isinstance(exc, Cancelled):
            self.status_message.emit(f"{self._task_action.capitalize()} cancelled.")
        else:
            self.error_occurred.emit(self._task_action, exc)

    def cancel_proposal(self) -> None:
        self._proposal_job.cancel()

    def import_segmentation(self, path: str | Path, table: str = "totalsegmentator") -> None:
        """The anatomy from a segmentation file (NIfTI label map with its label table, or a
        DICOM SEG) instead of the automatic one; a file that cannot be used is reported
        with its name and the automatic anatomy (if any) stays."""
        volume, limits = self._volume, self._limits
        if volume is None:
            return

        def job(progress: Progress) -> tuple[Anatomy, CheckContext, Mesh]:
            from planning.anatomy_source import LABELS, AnatomySource, load_anatomy

            source = AnatomySource(LABELS, labels_path=Path(path), label_table=table)
            anatomy = load_anatomy(volume, source, progress)
            progress.report(9, 10, "Preparing the safety checks")
            context = CheckContext.build(volume, anatomy, limits)
            return anatomy, context, mask_mesh(anatomy.canal, anatomy.affine_lps)

        self._importing = Path(path).name
        self._start_anatomy(f"Importing the segmentation {Path(path).name}…", job, found=True)

    def _start_anatomy(self, label: str, job: Callable[[Progress], Any], *,
                       found: bool = False) -> None:
        self._anatomy_is_found = found
        self._anatomy_job.start(job)
        self.anatomy_started.emit(label)

    def _on_anatomy_succeeded(self, result: object) -> None:
        self._importing = None
        self.anatomy_finished.emit()
        anatomy, context, mesh = result  # type: ignore[misc]
        if self._anatomy_is_found:
            self.set_anatomy(anatomy, context, mesh)
        else:
            self._show_anatomy(anatomy, context, mesh)

    def _on_anatomy_failed(self, exc: object) -> None:
        self.anatomy_finished.emit()
        importing, self._importing = self._importing, None
        if importing is not None and not isinstance(exc, Cancelled):
            self.error_occurred.emit(f"importing the segmentation {importing}", exc)
        elif isinstance(exc, Cancelled):
            self.anatomy_unavailable.emit("Finding the spine was cancelled.")
        elif isinstance(exc, VertebroPlanError):  # e.g. no spine in this CT: not a fault
            self.anatomy_unavailable.emit(str(exc))
        else:
            self.anatomy_unavailable.emit("The spine could not be analysed (an error).")
            self.error_occurred.emit("finding the spine", exc)

    def _on_proposal_succeeded(self, result: object) -> None:
        self.proposal_finished.emit()
        self.proposal_ready.emit(result)

    def _on_proposal_failed(self, exc: object) -> None:
        self.proposal_finished.emit()
        if isinstance(exc, Cancelled):
            self.status_message.emit("Proposal cancelled.")
        else:
            self.error_occurred.emit("proposing trajectories", exc)

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
        self._load.cancel()

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Cancel running work and wait for the threads (call when the window closes)."""
        for slot in (self._load, self._surface_job, self._anatomy_job, self._proposal_job,
                     self._task_job):
            slot.cancel()
        self._pool.waitForDone(timeout_ms)

    def _start_load(self, label: str, action: str, job: Callable[[Progress], Any]) -> None:
        self._load_action = action  # a newer request replaces a running one, whose result
        self._load.start(job)  # will be dropped
        self.load_started.emit(label)

    def _on_load_succeeded(self, result: object) -> None:
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

    def _on_load_failed(self, exc: object) -> None:
        self.load_finished.emit()
        if isinstance(exc, Cancelled):
            self.status_message.emit("Loading cancelled.")
        else:
            self.error_occurred.emit(self._load_action, exc)

    def _start_surface(self, volume: Volume) -> None:
        self._surface_job.start(lambda progress: extract_bone_surface(
            volume, progress=progress, not_bone=not_bone_mask(volume)))
        self.surface_started.emit()

    def _on_surface_succeeded(self, surface: object) -> None:
        assert isinstance(surface, BoneSurface)
        self._surface = surface
        self.surface_ready.emit(surface)

    def _on_surface_failed(self, exc: object) -> None:
        if not isinstance(exc, Cancelled):
            self.error_occurred.emit("building the bone surface", exc)
