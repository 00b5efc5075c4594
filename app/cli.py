"""Command-line interface: ``vertebroplan [open PATH | demo-ct OUTDIR | info PATH --json]``.

Batch commands import no Qt, so they run on servers and in CI without a display. Errors are
one plain line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from planning.errors import VertebroPlanError
from planning.vocabulary import DISCLAIMER

if TYPE_CHECKING:  # the batch commands import their heavy modules only when they run
    from planning.anatomy import Anatomy
    from planning.volume import Volume

from app.cli_common import EXIT_ERROR, EXIT_OK, EXIT_USAGE, CliError, anatomy_for, plan_on_ct
from app.cli_common import stderr_progress as _stderr_progress

log = logging.getLogger("vertebroplan")


EXPORT_OUTPUTS = (
    ("--pdf", "FILE", "PDF report to write"),
    ("--sr", "FILE", "DICOM Comprehensive 3D SR to write"),
    ("--seg", "FILE", "DICOM SEG to write: vertebrae, canal and needle paths"),
    ("--markups", "FILE", "3D Slicer markups (.mrk.json) to write: a line per needle"),
    ("--stl", "DIR", "folder to write STL meshes into: bone, canal, vertebrae, needles (LPS mm)"),
    ("--obj", "DIR", "as --stl, in OBJ format"),
    ("--send", "AET@HOST:PORT", "send the plan to a DICOM node: the SR, the SEG and the report "
                                "(Encapsulated PDF) in the CT's study"),
)
"""What `vertebroplan export` can write or send: option, its value's name, its help."""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vertebroplan",
        description=f"VertebroPlan: vertebroplasty planning on CT. {DISCLAIMER}.",
    )
    from app import __version__

    parser.add_argument("--version", action="version", version=f"vertebroplan {__version__}")
    sub = parser.add_subparsers(dest="command")
    p_open = sub.add_parser("open", help="start the workstation on a DICOM folder or NIfTI file")
    p_open.add_argument("path", nargs="?",
                        help="DICOM folder (searched recursively) or .nii/.nii.gz")
    p_open.add_argument("--pacs", metavar="NODE",
                        help="retrieve the CT from this PACS first (AET@HOST:PORT or a "
                             "DICOMweb URL); with --study")
    p_open.add_argument("--study", metavar="UID", help="StudyInstanceUID to retrieve (--pacs)")
    p_open.add_argument("--series", metavar="UID", help="SeriesInstanceUID to open")
    p_open.add_argument("--plan", metavar="PLAN",
                        help="a plan to open with the CT (.vplan.json or DICOM SR)")
    for p in (parser, p_open):
        p.add_argument(
            "--screenshot",
            metavar="PNG",
            help="save the window once the 3D view is drawn, then quit (smoke test)",
        )
    from app import cli_pacs

    cli_pacs.add_identity(p_open)
    cli_pacs.add_parsers(sub)
    from app import batch_cli

    batch_cli.add_parser(sub)
    p_demo = sub.add_parser("demo-ct", help="write the built-in demo spine CT as DICOM")
    p_demo.add_argument("outdir", help="folder to write the series and its ground truth into")
    p_info = sub.add_parser("info", help="describe a CT: size, spacing, LPS affine, UIDs")
    p_info.add_argument("path", help="DICOM folder or NIfTI file")
    p_info.add_argument("--series", metavar="UID", help="SeriesInstanceUID to describe")
    p_info.add_argument("--json", action="store_true", help="print one JSON object")
    p_check = sub.add_parser("check", help="check every trajectory of a plan against the CT")
    p_check.add_argument("ct", help="DICOM folder or NIfTI file the plan was made on")
    p_check.add_argument("plan", help="plan file (.vplan.json or VertebroPlan DICOM SR)")
    p_check.add_argument(
        "--force-other-frame",
        action="store_true",
        help="apply a plan made on another Frame of Reference (recorded in the result)",
    )
    p_check.add_argument("--json", action="store_true", help="print one JSON object")
    p_anat = sub.add_parser(
        "anatomy", help="find the spinal canal, the vertebrae and their levels in a CT"
    )
    p_anat.add_argument("ct", help="DICOM folder or NIfTI file")
    p_plan = sub.add_parser(
        "plan", help="propose bilateral transpedicular trajectories and write a plan file"
    )
    p_plan.add_argument("ct", help="DICOM folder or NIfTI file")
    p_plan.add_argument(
        "-o", "--output", required=True, metavar="PLAN", help=".vplan.json to write"
    )
    p_plan.add_argument("--levels", metavar="T12,L1", help="levels to plan (default: every level)")
    p_plan.add_argument("--gauge", default="11G", help="needle gauge (default 11G)")
    p_export = sub.add_parser(
        "export", help="write the plan as a PDF report and/or DICOM SR, or send it to a PACS"
    )
    p_export.add_argument("ct", help="DICOM folder the plan was made on")
    p_export.add_argument("plan", help="plan file (.vplan.json or DICOM SR)")
    for flag, metavar, text in EXPORT_OUTPUTS:
        p_export.add_argument(flag, metavar=metavar, help=text)
    p_export.add_argument("--send-ct", action="store_true",
                          help="with --send: send the CT's own images too")
    p_export.add_argument("--deidentify", action="store_true",
                          help="remove patient identifiers (DICOM PS3.15 basic profile)")
    p_export.add_argument("--planner", default="", help="planner's name for the report")
    p_export.add_argument("--no-3d", action="store_true",
                          help="leave the 3D snapshots out of the report (faster)")
    p_export.add_argument("--no-fluoro", action="store_true",
                          help="leave out the simulated fluoroscopy (DRR) page of each level")
    p_export.add_argument("--supine", action="store_true",
                          help="C-arm angles for a supine patient (default: prone)")
    p_export.add_argument(
        "--carm-registration", choices=("table", "patient"), default="table",
        help="how the suite's C-arm registers the patient, i.e. which angles come first: "
        "'table' = always head-first supine (its LAO/RAO mirrored for a prone patient), "
        "'patient' = as the patient lies (DICOM's patient-referenced angles); both are "
        "always written (default: table)")
    p_export.add_argument("--source-detector-mm", type=float, default=1200.0, metavar="MM",
                          help="simulated C-arm: source to detector distance (default 1200)")
    p_export.add_argument("--source-isocentre-mm", type=float, default=800.0, metavar="MM",
                          help="simulated C-arm: source to isocentre distance (default 800)")
    p_export.add_argument(
        "--force-other-frame", action="store_true",
        help="apply a plan made on another Frame of Reference (recorded in the exports)",
    )
    for p in (p_check, p_anat, p_plan, p_export):
        p.add_argument("--series", metavar="UID", help="SeriesInstanceUID of the CT")
        p.add_argument("--labels", metavar="LABELMAP",
                       help="the anatomy from a segmentation: a NIfTI label map or a DICOM SEG")
        p.add_argument(
            "--label-table",
            default="totalsegmentator",
            metavar="FILE|totalsegmentator|verse",
            help="what the label map's codes mean (default: totalsegmentator)",
        )
        p.add_argument(
            "--anatomy",
            choices=("auto", "truth"),
            help="without --labels: 'auto' finds the anatomy in the CT (the default for "
            "anatomy and plan); 'truth' uses the demo CT's ground truth (the default for check "
            "on the demo CT)",
        )
        p.add_argument(
            "--shift-labels",
            type=int,
            default=0,
            metavar="N",
            help="rename the levels N places caudally (negative: cranially) when the "
            "automatic labels are off",
        )
    p_anat.add_argument("--json", action="store_true", help="print one JSON object")
    p_anat.add_argument("--gauge", default="11G",
                        help="needle gauge the pedicles are judged for (default 11G)")
    p_plan.add_argument("--json", action="store_true", help="print one JSON object")
    for p in (p_anat, p_export):
        p.add_argument("--cement-fill", type=_fill_range, default=(0.15, 0.30),
                       metavar="LOW-HIGH",
                       help="cement fill range in percent of the vertebral body volume "
                       "(default 15-30)")
    p_imp = sub.add_parser(
        "import-markups",
        help="read 3D Slicer markups (lines, or entry/tip point pairs) as a plan on a CT")
    p_imp.add_argument("ct", help="DICOM folder or NIfTI file the markups were placed on")
    p_imp.add_argument("markups", help=".mrk.json file (LPS or RAS coordinates)")
    p_imp.add_argument("-o", "--output", required=True, metavar="PLAN",
                       help=".vplan.json to write")
    p_imp.add_argument("--gauge", default="11G",
                       help="gauge of needles whose markup does not say (default 11G)")
    p_imp.add_argument("--series", metavar="UID", help="SeriesInstanceUID of the CT")
    from app import cli_training

    cli_training.add_parsers(sub)
    return parser


def _fill_range(text: str) -> tuple[float, float]:
    """``--cement-fill``: "LOW-HIGH" percent, 1 ≤ low < high ≤ 80, as fractions."""
    try:
        low, high = (float(v) for v in text.replace("%", "").split("-"))
    except ValueError:
        low = high = float("nan")
    if not (np.isfinite(low) and np.isfinite(high) and 1.0 <= low < high <= 80.0):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a fill range in percent like 15-30 (1 ≤ low < high ≤ 80)")
    return (low / 100.0, high / 100.0)


def volume_info(volume: Volume) -> dict[str, object]:
    """The JSON description of a loaded volume (no patient-identifying data)."""
    hu_min, hu_max = volume.hu_range
    return {
        "modality": volume.modality,
        "size": list(volume.size),
        "spacing_mm": [round(float(s), 6) for s in volume.spacing_mm],
        "affine_lps": np.round(volume.affine_lps, 6).tolist(),
        "hu_min": hu_min,
        "hu_max": hu_max,
        "study_uid": volume.study_uid,
        "series_uid": volume.series_uid,
        "frame_of_reference_uid": volume.frame_of_reference_uid,
        "warnings": list(volume.warnings),
    }


def _cmd_info(args: argparse.Namespace) -> int:
    from planning.io import load_path

    volume = load_path(args.path, args.series, _stderr_progress())
    info = volume_info(volume)
    if args.json:
        print(json.dumps(info))
        return EXIT_OK
    for key, value in info.items():
        if key == "affine_lps":
            print("affine_lps:")
            for row in value:  # type: ignore[attr-defined]
                print("   " + "  ".join(f"{v:10.4f}" for v in row))
        elif key == "warnings":
            for w in value:  # type: ignore[attr-defined]
                print(f"warning: {w}")
        else:
            print(f"{key}: {value}")
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from planning.checks import check_plan

    plan, _volume, _anatomy, ctx = plan_on_ct(args)
    results = check_plan(plan, ctx)
    out: dict[str, object] = {"trajectories": [r.to_json() for r in results]}
    if plan.frame_override is not None:
        out["frame_override"] = {
            "plan_frame_uid": plan.frame_override.plan_frame_uid,
            "ct_frame_uid": plan.frame_override.ct_frame_uid,
        }
    if args.json:
        print(json.dumps(out))
        return EXIT_OK
    for r in results:
        print(
            f"{r.side.value.capitalize():5s} {r.level:3s}  {r.status.value.upper():7s} "
            f"canal {r.canal_clearance_mm:+6.1f} mm  grade {r.breach_grade}  "
            f"length {r.length_mm:5.1f} mm"
        )
        for reason in r.reasons:
            print(f"      {reason}")
    print(DISCLAIMER)
    return EXIT_OK


def anatomy_json(anatomy: Anatomy, assessment: dict[str, Any] | None = None
                 ) -> dict[str, object]:
    """The JSON description of an anatomy: levels with centroid, confidence and pedicle
    widths, whether the canal was found, and the warnings (no patient data); with an
    `assess_levels` result each level also gets its clinical assessment (heights_mm,
    genant_grade, body_volume_ml, cement, pedicles, flags)."""
    from planning.anatomy.pedicles import measure_pedicles
    from planning.plan import Side, level_index

    pedicles = measure_pedicles(anatomy)
    levels = []
    for name, geo in sorted(anatomy.levels.items(), key=lambda kv: level_index(kv[0])):
        widths: dict[str, float | None] = {}
        for side in Side:
            ped = pedicles.get(name, {}).get(side)
            widths[side.value] = None if ped is None else round(float(ped.isthmus_width_mm), 2)
        level: dict[str, Any] = {
            "name": name,
            "centroid_lps": [round(float(v), 2) for v in geo.centroid_lps],
            "confidence": round(float(geo.confidence), 2),
            "pedicle_width_mm": widths,
        }
        if assessment is not None and name in assessment:
            level.update(assessment[name].to_json())
        levels.append(level)
    return {
        "levels": levels,
        "fractured_levels": ([] if assessment is None else
                             [n for n, a in assessment.items() if a.fractured]),
        "canal_found": bool(anatomy.canal.any()),
        "source": anatomy.source,
        "warnings": list(anatomy.warnings),
    }


def _cmd_anatomy(args: argparse.Namespace) -> int:
    from planning.assessment.levels import assess_levels
    from planning.io import load_path

    volume = load_path(args.ct, args.series, _stderr_progress())
    anatomy = anatomy_for(volume, args, default="auto")
    assessment = assess_levels(volume, anatomy, gauge=args.gauge,
                               fill_range=args.cement_fill, progress=_stderr_progress())
    out = anatomy_json(anatomy, assessment)
    if args.json:
        print(json.dumps(out))
        return EXIT_OK
    canal = "found" if out["canal_found"] else "NOT found"
    print(f"Anatomy: {out['source']}; spinal canal {canal}")
    for lv in out["levels"]:  # type: ignore[attr-defined]
        w = lv["pedicle_width_mm"]
        width = "  ".join(
            f"{side} pedicle {w[side]:4.1f} mm" if w[side] is not None else f"{side} pedicle —"
            for side in ("left", "right")
        )
        x, y, z = lv["centroid_lps"]
        print(
            f"{lv['name']:3s}  body centre LPS ({x:7.1f}, {y:7.1f}, {z:7.1f}) mm  "
            f"confidence {lv['confidence']:.2f}  {width}"
        )
        a = assessment.get(lv["name"])
        if a is not None:
            ml = a.cement_ml_per_side
            cement = "" if ml is None else (
                f"; body {a.body_volume_ml:.1f} ml, cement {ml[0]:.1f}–{ml[1]:.1f} ml a side")
            print(f"     {a.fracture_summary()}{cement}")
            for side, p in a.pedicles.items():
                if p.fit != "ok":
                    print(f"     {side.value} pedicle: {p.fit} for {p.gauge.name}; {p.suggestion}")
            for flag in a.present_flags:
                print(f"     leakage risk: {flag.why} ({flag.confidence} confidence)")
    for w in out["warnings"]:  # type: ignore[attr-defined]
        print(f"warning: {w}")
    print(DISCLAIMER)
    return EXIT_OK


def _requested_levels(text: str | None, anatomy: Anatomy) -> list[str] | None:
    """The levels of ``--levels``, each checked against the anatomy found in the CT."""
    from planning.plan import validate_level

    if text is None:
        return None
    levels = [validate_level(name.strip()) for name in text.split(",") if name.strip()]
    missing = [name for name in levels if name not in anatomy.levels]
    if missing:
        found = ", ".join(anatomy.levels) or "none"
        raise CliError(
            f"{', '.join(missing)} not found in this CT (levels found: {found}); "
            "if the labels are off by one, use --shift-labels."
        )
    return levels


def _cmd_plan(args: argparse.Namespace) -> int:
    from planning.autoplan import propose
    from planning.checks import CheckContext
    from planning.interop.plan_file import save_plan
    from planning.io import load_path
    from planning.plan import gauge

    needle = gauge(args.gauge)  # a wrong gauge is refused before any work
    volume = load_path(args.ct, args.series, _stderr_progress())
    anatomy = anatomy_for(volume, args, default="auto")
    levels = _requested_levels(args.levels, anatomy)
    ctx = CheckContext.build(volume, anatomy)
    proposal = propose(volume, anatomy, ctx, levels, needle.name, _stderr_progress())
    path = save_plan(proposal.plan, args.output)
    out = {
        "plan": str(path),
        "trajectories": [
            {
                **proposal.results[t.key].to_json(),
                "gauge": t.gauge,
                "note": proposal.notes.get(t.key),
            }
            for t in proposal.plan.trajectories
        ],
        "omitted": [
            {"level": level, "side": side.value, "reason": note}
            for (level, side), note in proposal.notes.items()
            if proposal.plan.get(level, side) is None
        ],
        "omitted_levels": [{"level": k, "reason": v} for k, v in proposal.omitted.items()],
        "warnings": list(anatomy.warnings),
    }
    if args.json:
        print(json.dumps(out))
        return EXIT_OK
    for t in proposal.plan.trajectories:
        r = proposal.results[t.key]
        print(
            f"{t.label:9s} {t.gauge:3s}  {r.status.value.upper():7s} canal "
            f"{r.canal_clearance_mm:+5.1f} mm  tip {r.tip_depth_fraction or 0:.0%} deep  "
            f"length {r.length_mm:5.1f} mm"
        )
        if t.key in proposal.notes:
            print(f"      {proposal.notes[t.key]}")
    for item in out["omitted"]:  # type: ignore[attr-defined]
        print(f"not planned: {item['reason']}")
    for item in out["omitted_levels"]:  # type: ignore[attr-defined]
        print(f"not planned: {item['level']}: {item['reason']}")
    for w in anatomy.warnings:
        print(f"warning: {w}")
    print(f"Plan written to {path}. {DISCLAIMER}.")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from planning.demo import write_demo_ct

    out = Path(args.outdir)
    if out.exists() and not out.is_dir():
        raise CliError(f"'{out}' exists and is not a folder: choose a folder to write into.")
    truth = write_demo_ct(out, _stderr_progress())
    names = ", ".join(level.name for level in truth.levels)
    print(f"Demo spine CT written to {out} (levels {names}). {DISCLAIMER}.")
    return EXIT_OK


def _cmd_gui(path: str | None, series: str | None, screenshot: str | None,
             plan: str | None = None, source_node: str | None = None) -> int:
    import os

    has_display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if not has_display and not os.environ.get("QT_QPA_PLATFORM"):
        raise CliError(
            "no display to show the workstation on: run it on a desktop, or under a virtual "
            "screen with `xvfb-run -a vertebroplan …` (`make run` does that for you)."
        )
    from app.gui import run_gui

    return run_gui(path, series, screenshot, plan, source_node=source_node)


def _cmd_open(args: argparse.Namespace) -> int:
    """``open PATH`` or ``open --pacs NODE --study UID``: the second retrieves the study's CT
    into the study cache (only what is missing) and opens it, remembering the node so a plan
    sent afterwards goes back to it."""
    if args.pacs is None:
        if args.path is None:
            raise CliError("open: give a DICOM folder or NIfTI file, or --pacs NODE --study UID")
        if args.study:
            raise CliError("open: --study needs --pacs NODE")
        return _cmd_gui(args.path, args.series, args.screenshot, args.plan)
    if args.path is not None or not args.study:
        raise CliError("open --pacs NODE needs --study UID and no PATH")
    from app import cli_pacs
    from planning.pacs.cache import StudyCache

    cache = StudyCache()
    reports = cli_pacs.retrieve_to(args, args.pacs, args.study, args.series, cache)
    cache.touch(args.study)
    complete = [r for r in reports if r.expected]
    if any(r.missing for r in reports):
        raise CliError("; ".join(r.describe() for r in reports if r.missing)
                       + ": run the command again to fetch only what is missing")
    folder = complete[0].folder if len(complete) == 1 else str(cache.study_dir(args.study))
    return _cmd_gui(folder, args.series, args.screenshot, args.plan, source_node=args.pacs)


_COMMANDS: dict[str, Callable[[argparse.Namespace], int] | str] = {
    "info": _cmd_info,
    "check": _cmd_check,
    "anatomy": _cmd_anatomy,
    "plan": _cmd_plan,
    "demo-ct": _cmd_demo,
    "open": _cmd_open,
    # "module:function": imported only when the command runs
    "cases": "app.cli_training:cmd_cases",
    "train-score": "app.cli_training:cmd_train_score",
    "export": "app.cli_export:cmd_export",
    "import-markups": "app.cli_export:cmd_import_markups",
    "batch": "app.batch_cli:run",
    "pacs": "app.cli_pacs:run",
}
"""The function that runs each sub-command."""


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    """The function that runs the sub-command ``name`` (its module imported now)."""
    target = _COMMANDS[name]
    if callable(target):
        return target
    module, _, function = target.partition(":")
    run: Callable[[argparse.Namespace], int] = getattr(import_module(module), function)
    return run


def _one_line_errors(run: Callable[[], int], failure_status: int) -> int:
    """``run()``'s exit status; an error the user can act on (a `VertebroPlanError`, a file
    that cannot be read or written) or Ctrl+C is one line on stderr and ``failure_status``,
    never a traceback."""
    try:
        return run()
    except (VertebroPlanError, OSError) as exc:
        print(f"vertebroplan: error: {exc}", file=sys.stderr)
        return failure_status
    except KeyboardInterrupt:
        print("vertebroplan: interrupted", file=sys.stderr)
        return failure_status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vertebroplan`` console script."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command not in (None, "open"):  # the window sets up its own (with stderr)
        from app.logs import setup_logging

        setup_logging(to_stderr=False)

    def run() -> int:
        if args.command is None:
            return _cmd_gui(None, None, args.screenshot)
        return _command(args.command)(args)

    # train-score's exit status 1 means "the trainee failed", so an error that prevents
    # scoring must not look like a fail: 2, as argparse uses for bad arguments
    failure_status = EXIT_USAGE if args.command == "train-score" else EXIT_ERROR
    return _one_line_errors(run, failure_status)


if __name__ == "__main__":
    sys.exit(main())
