"""One export of a plan: PDF report, DICOM SR, DICOM SEG, Encapsulated PDF, Slicer markups,
meshes, and the send of the bundle — for the CLI and the GUI alike (the GUI runs it in a
worker with progress and Cancel).

The images of the report come from here because the 3D snapshot needs VTK, which the pure
domain (`planning.report`, `planning.interop`) may not import; everything else is theirs.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planning.anatomy.model import (
    LOW_NAME_CONFIDENCE,
    UNCERTAIN_NAMES_TEXT,
    Anatomy,
    names_uncertain,
)
from planning.checks import CheckResult
from planning.drr import AttenuationVolume
from planning.errors import VertebroPlanError
from planning.fluoro_views import FluoroSetup
from planning.interop.derived_dicom import Authoring
from planning.interop.study_uids import (
    created_uids_note,
    missing_uids,
    volume_for_export,
    with_export_uids,
)
from planning.mask_reslice import Mesh
from planning.plan import Plan, Side
from planning.progress import Progress, no_progress
from planning.version import __version__
from planning.volume import Volume

SOFTWARE_VERSION = __version__


class ExportError(VertebroPlanError, ValueError):
    """An export that cannot be made as asked (nothing to export, no DICOM CT for the SR)."""


@dataclass(frozen=True)
class ExportRequest:
    pdf_path: Path | None = None
    sr_path: Path | None = None
    send_to: str | None = None  # "AET@HOST:PORT"
    deidentify: bool = False
    planner: str = ""
    with_3d: bool = True  # a 3D snapshot per level in the report (VTK off screen)
    with_fluoroscopy: bool = True  # a simulated fluoroscopy (DRR) page per level
    fluoro_setup: FluoroSetup | None = None  # C-arm distances and patient position
    with_assessment: bool = True  # the level assessment (fracture, cement, risks) in both
    fill_range: tuple[float, float] = (0.15, 0.30)  # cement fill, fractions of the body
    seg_path: Path | None = None  # DICOM SEG: vertebrae, canal, needle paths
    markups_path: Path | None = None  # 3D Slicer .mrk.json lines
    mesh_dir: Path | None = None  # STL/OBJ of bone, canal, vertebrae and needles
    mesh_format: str = "stl"
    send_ct: bool = False  # the CT's own images in the bundle too


@dataclass
class ExportReport:
    written: list[Path] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)  # what arrived, in words
    notes: list[str] = field(default_factory=list)


def export_plan(
    volume: Volume,
    plan: Plan,
    results: dict[tuple[str, Side], CheckResult],
    anatomy: Anatomy | None,
    request: ExportRequest,
    progress: Progress | None = None,
    surface: object | None = None,
    attenuation: AttenuationVolume | None = None,
    assessment: dict[str, Any] | None = None,
) -> ExportReport:
    """Write and/or send the plan as the request says; raises `VertebroPlanError`s with
    messages for the user (and `Cancelled` when ``progress`` is cancelled)."""
    from planning.interop.deidentify import Deidentifier
    from planning.interop.dicom_sr import write_plan_sr
    from planning.interop.encapsulated_pdf import encapsulate_pdf, write_dataset
    from planning.report.model import FluoroscopyPages, PlanReport, refuse_unprintable
    from planning.report.pdf import write_pdf_report
    from planning.report.report_images import level_images

    progress = progress or no_progress()
    if not plan.trajectories:
        raise ExportError("The plan has no needles: there is nothing to export.")
    if not (request.pdf_path or request.sr_path or request.send_to or request.seg_path
            or request.markups_path or request.mesh_dir):
        raise ExportError("Choose at least one of: a PDF file, an SR file, a SEG file, "
                          "a markups file, a mesh folder, a DICOM node.")
    if request.seg_path is not None and anatomy is None:
        raise ExportError("A DICOM SEG needs the anatomy (vertebrae and canal), and none was "
                          "found for this CT.")
    report = ExportReport()
    # a CT without Study / Series UIDs: one new study for all of this export's objects (the
    # window and the CLI give the plan its UIDs beforehand and keep them in it)
    plan, _ = with_export_uids(plan, volume)
    uids_note = created_uids_note(plan, volume)
    if uids_note:
        report.notes.append(uids_note)
    source_volume, volume = volume, volume_for_export(volume, plan)
    # a report that would mislead is refused before the slow work and before any file
    if request.pdf_path is not None or request.send_to:
        refuse_unprintable(plan, results, volume)
    if request.send_to and not _writes_files(request):  # nobody there: say so at once
        from planning.interop.send import RemoteAE, refuse_unreachable

        refuse_unreachable(RemoteAE.parse(request.send_to))
    # the report was rendered without identifiers (PlanReport(deidentify=True)), so
    # its encapsulation may be marked as de-identified content
    deid = Deidentifier(document_content_deidentified=True) if request.deidentify else None
    fluoro_steps = 2 * len(plan.levels) if request.with_fluoroscopy else 0
    assess = (request.with_assessment and anatomy is not None and assessment is None
              and bool(request.pdf_path or request.sr_path or request.send_to))
    extra = sum(1 for x in (request.seg_path or request.send_to, request.markups_path,
                            request.mesh_dir, request.send_ct) if x)
    steps = 3 + len(plan.levels) + fluoro_steps + int(assess) + extra
    step = 0

    def tick(message: str) -> None:
        nonlocal step
        progress.report(step, steps, message)
        progress.check_cancelled()
        step += 1

    if not request.with_assessment:
        assessment = None
    elif assess and anatomy is not None:
        from planning.assessment.levels import assess_levels

        tick("Assessing the levels")
        gauges = [t.gauge for t in plan.trajectories]
        assessment = assess_levels(volume, anatomy, plan.trajectories,
                                   gauge=max(set(gauges), key=gauges.count),
                                   fill_range=request.fill_range)
    pdf_path = request.pdf_path
    with tempfile.TemporaryDirectory(prefix="vertebroplan-export-") as tmp:
        if pdf_path is None and request.send_to:
            pdf_path = Path(tmp) / "plan-report.pdf"
        if request.markups_path is not None:
            from planning.interop.slicer_markups import write_markups

            tick("Writing the Slicer markups")
            report.written.append(write_markups(request.markups_path, plan))
        if request.mesh_dir is not None:
            from planning.interop.meshes import write_scene_meshes

            tick("Writing the meshes")
            if surface is None:
                from planning.surface import extract_bone_surface, not_bone_mask

                surface = extract_bone_surface(volume, not_bone=not_bone_mask(volume))
            paths = write_scene_meshes(request.mesh_dir, bone=surface,  # type: ignore[arg-type]
                                       anatomy=anatomy, plan=plan, fmt=request.mesh_format)
            report.written.append(request.mesh_dir)
            report.notes.append(f"{len(paths) - 1} mesh files in {request.mesh_dir}")
        seg_path = _write_seg(request, volume, anatomy, plan, deid, Path(tmp), tick, report)
        if pdf_path is not None:
            images, snapshots = {}, {}
            bone = surface
            if request.with_3d and bone is None:
                from planning.surface import extract_bone_surface, not_bone_mask

                tick("Building the bone surface for the report")
                bone = extract_bone_surface(volume, not_bone=not_bone_mask(volume))
            canal = _canal_for_snapshots(anatomy) if request.with_3d else None
            for level in plan.levels:
                tick(f"Report images of {level}")
                images[level] = level_images(volume, plan, results, anatomy, level)
                if request.with_3d and bone is not None:
                    snapshots[level] = _snapshot(bone, plan, results, canal, level)
            tick("Writing the PDF report")
            fluoroscopy = FluoroscopyPages(attenuation) if request.with_fluoroscopy else None
            write_pdf_report(pdf_path, PlanReport(
                plan, results, volume, images, snapshots=snapshots, planner=request.planner,
                software_version=SOFTWARE_VERSION,
                warnings=[*report_warnings(source_volume, anatomy),
                          *([uids_note] if uids_note else [])],
                deidentify=request.deidentify, carm=request.fluoro_setup or FluoroSetup(),
                fluoroscopy=fluoroscopy, assessment=assessment,
            ), progress=progress.part(step, fluoro_steps, steps))
            step += fluoro_steps
            if request.pdf_path is not None:
                report.written.append(pdf_path)
        sr_path = request.sr_path
        if sr_path is None and request.send_to:
            sr_path = Path(tmp) / "plan-sr.dcm"
        if sr_path is not None:
            tick("Writing the DICOM SR")
            position = (request.fluoro_setup or FluoroSetup()).position
            write_plan_sr(sr_path, plan, results, volume, authoring=_authoring(deid),
                          position=position,
                          assessment=assessment, uncertain_levels=_uncertain(anatomy))
            if request.sr_path is not None:
                report.written.append(sr_path)
        if request.send_to:
            from planning.interop.send import RemoteAE, send

            remote = RemoteAE.parse(request.send_to)
            assert pdf_path is not None and sr_path is not None
            pdf_ds = encapsulate_pdf(pdf_path, volume, deidentify_with=deid)
            pdf_dcm = Path(tmp) / "plan-report.dcm"
            write_dataset(pdf_ds, pdf_dcm)
            tick(f"Sending to {remote.ae_title} at {remote.host}:{remote.port}")
            bundle: list[Any] = [sr_path, pdf_dcm]
            if seg_path is not None:
                bundle.append(seg_path)
            if request.send_ct:
                bundle += _ct_for_sending(source_volume, volume, deid, tick)
            outcome = send(remote, bundle, progress=progress)
            report.sent.append(str(outcome))
    progress.report(steps, steps, "Export finished")
    return report


def _write_seg(request: ExportRequest, volume: Volume, anatomy: Anatomy | None, plan: Plan,
               deid: Any, tmp: Path, tick: Any, report: ExportReport) -> Path | None:
    """The DICOM SEG when asked for, and for the bundle sent (where it can be made: the
    bundle goes without it, and says so, for a CT without DICOM images or anatomy)."""
    from planning.interop.dicom_seg import SEGExportError, write_plan_seg

    path = request.seg_path
    if path is None and not request.send_to:
        return None
    if anatomy is None:
        report.notes.append("No SEG in the bundle: no anatomy was found for this CT.")
        return None
    tick("Writing the DICOM SEG")
    try:
        written = write_plan_seg(path or tmp / "plan-seg.dcm", volume, anatomy, plan,
                                 authoring=_authoring(deid))
    except SEGExportError as exc:
        if path is not None:
            raise
        report.notes.append(f"No SEG in the bundle: {exc}")
        return None
    if path is not None:
        report.written.append(written)
    return written


def _ct_for_sending(volume: Volume, exported: Volume, deid: Any, tick: Any) -> list[Any]:
    """The CT's own files, or de-identified copies of them (with the same UID mapping as
    the SR and SEG, so that their references still hold); a CT without Study / Series UIDs
    is sent with those of ``exported`` (the plan's), so it is filed with the plan."""
    from planning.io.dicom_series import source_files

    tick("Finding the CT's images to send")
    files = source_files(volume)
    if deid is None and not missing_uids(volume):
        return list(files)
    import pydicom

    out = []
    for f in files:
        ds = pydicom.dcmread(f)
        ds.StudyInstanceUID = ds.get("StudyInstanceUID") or exported.study_uid
        ds.SeriesInstanceUID = ds.get("SeriesInstanceUID") or exported.series_uid
        out.append(ds if deid is None else deid(ds))
    return out


def _canal_for_snapshots(anatomy: Anatomy | None) -> Mesh | None:
    """The canal's surface for the report's 3D pictures: built once for every level (a
    coarser one than the window's, which is enough at the pictures' size)."""
    if anatomy is None:
        return None
    from planning.mask_reslice import mask_mesh

    return mask_mesh(anatomy.canal, anatomy.affine_lps, step_vox=2)


def _snapshot(surface: object, plan: Plan, results: dict[tuple[str, Side], CheckResult],
              canal: Mesh | None, level: str) -> bytes:
    import numpy as np

    from widgets.plan_display import NeedleDisplay
    from widgets.snapshot3d import render_level_snapshot

    needles = []
    for t in plan.trajectories:
        res = results.get(t.key)
        needles.append(NeedleDisplay(t.level, t.side, t.entry, t.target, t.radius_mm,
                                     None if res is None else res.status,
                                     None if res is None else res.canal_clearance_mm,
                                     selected=t.level == level))
    own = [t for t in plan.trajectories if t.level == level]
    focus = np.mean([t.entry + 0.6 * (t.target - t.entry) for t in own], axis=0)
    verts, faces, normals = (surface.vertices_lps, surface.faces,  # type: ignore[attr-defined]
                             surface.normals_lps)  # type: ignore[attr-defined]
    return render_level_snapshot(verts, faces, normals, needles, focus, canal_mesh=canal)


def _writes_files(request: ExportRequest) -> bool:
    return any(p is not None for p in (request.pdf_path, request.sr_path, request.seg_path,
                                       request.markups_path, request.mesh_dir))


def _authoring(deid: Any) -> Authoring:
    """This version of VertebroPlan as the SR's and the SEG's equipment, de-identifying
    them when the export is de-identified."""
    return Authoring(software_version=SOFTWARE_VERSION, deidentify_with=deid)


def report_warnings(volume: Volume, anatomy: Anatomy | None) -> list[str]:
    """What the report's Warnings section says: the CT's own (loading) warnings and the
    anatomy's, led by uncertain level names when they are (the never-event: wrong level)."""
    notes = list(volume.warnings)
    if anatomy is not None:
        if names_uncertain(anatomy):
            notes.insert(0, UNCERTAIN_NAMES_TEXT)
        notes += [w for w in anatomy.warnings if w not in notes]
    return notes


def _uncertain(anatomy: Anatomy | None) -> set[str] | None:
    """The levels whose names are uncertain, for the SR (None without an anatomy)."""
    if anatomy is None:
        return None
    return {n for n, g in anatomy.levels.items() if g.confidence < LOW_NAME_CONFIDENCE}
