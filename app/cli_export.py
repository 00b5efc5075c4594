"""``vertebroplan export`` and ``import-markups``: the plan out to files and DICOM nodes, and
3D Slicer markups in as a plan."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli_common import EXIT_OK, CliError, plan_on_ct
from app.cli_common import stderr_progress as _stderr_progress
from planning.vocabulary import DISCLAIMER

if TYPE_CHECKING:
    from planning.plan import Plan
    from planning.volume import Volume


def cmd_export(args: argparse.Namespace) -> int:
    import os

    from app.export_job import ExportRequest, export_plan
    from planning.checks import check
    from planning.fluoro_views import FluoroSetup

    if not (args.pdf or args.sr or args.send or args.seg or args.markups or args.stl
            or args.obj):
        raise CliError("nothing to do: give --pdf FILE, --sr FILE, --seg FILE, --markups "
                       "FILE, --stl DIR, --obj DIR and/or --send AET@HOST:PORT")
    if args.stl and args.obj:
        raise CliError("give --stl DIR or --obj DIR, not both")
    if args.send_ct and not args.send:
        raise CliError("--send-ct needs --send AET@HOST:PORT")
    if not os.environ.get("DISPLAY"):  # 3D snapshots off screen: straight to EGL, no X probe
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    try:
        setup = FluoroSetup(position="supine" if args.supine else "prone",
                            convention=args.carm_registration,
                            source_to_detector_mm=args.source_detector_mm,
                            source_to_patient_mm=args.source_isocentre_mm)
    except ValueError as exc:
        raise CliError(f"C-arm set-up: {exc}") from None
    plan, volume, anatomy, ctx = plan_on_ct(args)
    plan = _with_export_uids(plan, volume, Path(args.plan))
    results = {t.key: check(t, ctx, plan) for t in plan.trajectories}
    request = ExportRequest(
        pdf_path=Path(args.pdf) if args.pdf else None,
        sr_path=Path(args.sr) if args.sr else None,
        send_to=args.send, deidentify=args.deidentify, planner=args.planner,
        with_3d=not args.no_3d, with_fluoroscopy=not args.no_fluoro,
        fluoro_setup=setup, fill_range=args.cement_fill,
        seg_path=Path(args.seg) if args.seg else None,
        markups_path=Path(args.markups) if args.markups else None,
        mesh_dir=Path(args.stl or args.obj) if (args.stl or args.obj) else None,
        mesh_format="obj" if args.obj else "stl", send_ct=args.send_ct,
    )
    report = export_plan(volume, plan, results, anatomy, request, _stderr_progress())
    for path in report.written:
        print(f"Written: {path}")
    for note in report.notes:
        print(f"Note: {note}")
    for line in report.sent:
        print(f"Sent: {line}")
    unsafe = [r for r in results.values() if r.status.value == "unsafe"]
    if unsafe:
        print(f"Note: {len(unsafe)} trajectory(ies) of this plan are UNSAFE; the exports say so.")
    print(DISCLAIMER)
    return EXIT_OK


def _with_export_uids(plan: Plan, volume: Volume, plan_path: Path) -> Plan:
    """A CT without Study / Series UIDs: create them once, before the long export, and
    keep them in the plan file so that every later export files into the same study."""
    from planning.interop.any_plan import is_plan_file
    from planning.interop.plan_file import save_plan
    from planning.interop.study_uids import missing_uids, with_export_uids

    plan, changed = with_export_uids(plan, volume)
    if not changed:
        return plan
    what = " and ".join(missing_uids(volume))
    if is_plan_file(plan_path):
        save_plan(plan, plan_path)
        print(f"Note: the CT has no {what}; the exports are filed in study {plan.study_uid}, "
              f"kept in {plan_path} for later exports.")
    else:
        print(f"Note: the CT has no {what}; the exports are filed in study "
              f"{plan.study_uid}. {plan_path.name} is not a plan file, so later exports "
              "will get another study: save the plan as .vplan.json to keep it.",
              file=sys.stderr)
    return plan


def cmd_import_markups(args: argparse.Namespace) -> int:
    """Markups → plan: the lines in LPS mm on the CT's Frame of Reference, each needle
    checked to lie in the CT, then written as a plan file."""
    from planning.interop.plan_file import save_plan
    from planning.interop.slicer_markups import read_markups
    from planning.io import load_path
    from planning.plan import gauge

    gauge(args.gauge)  # an unknown gauge is refused before anything is read
    volume = load_path(args.ct, args.series, _stderr_progress())
    plan = read_markups(args.markups, frame_of_reference_uid=volume.frame_of_reference_uid,
                        default_gauge=args.gauge)
    if plan.frame_of_reference_uid and volume.frame_of_reference_uid and \
            plan.frame_of_reference_uid != volume.frame_of_reference_uid:
        raise CliError(f"{args.markups}: the markups were made on another CT (Frame of "
                       "Reference differs).")
    outside = [t.label for t in plan.trajectories
               if not (volume.contains(t.entry) and volume.contains(t.target))]
    if outside:
        raise CliError(f"{args.markups}: {', '.join(outside)} lie(s) outside this CT: were "
                       "the markups placed on another scan, or in RAS read as LPS?")
    plan = replace(plan, study_uid=volume.study_uid, series_uid=volume.series_uid,
                   frame_of_reference_uid=volume.frame_of_reference_uid)
    save_plan(plan, args.output)
    for t in plan.trajectories:
        print(f"{t.label}: entry {_fmt(t.entry)} → tip {_fmt(t.target)} mm (LPS), {t.gauge}")
    print(f"Written: {args.output} ({len(plan.trajectories)} needles)")
    return EXIT_OK


def _fmt(p: Any) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in p) + ")"
