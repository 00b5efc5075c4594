"""``vertebroplan cases`` and ``train-score``: the training mode without the window."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.cli_common import EXIT_ERROR, EXIT_OK, CliError, stderr_progress
from planning.vocabulary import DISCLAIMER

if TYPE_CHECKING:
    from planning.training import TrainingCase


def _seconds(text: str) -> float:
    """``--time-s``: a finite number of seconds ≥ 0 (else a usage error, exit status 2)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds ≥ 0")
    return value


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``cases`` and ``train-score``: the training mode without the window."""
    p_cases = sub.add_parser("cases", help="list the training cases of a case library")
    p_cases.add_argument("library", nargs="?",
                         help="case library folder (default: the built-in library)")
    p_cases.add_argument("--json", action="store_true", help="print one JSON object")
    p_score = sub.add_parser(
        "train-score",
        help="score a trainee's plan against a training case's hidden reference",
        description="Score a trainee's plan against the case's reference. Exit status: 0 "
        "passed, 1 failed (the rubric's verdict), 2 could not score (bad input; the message "
        "names the file).",
    )
    p_score.add_argument("case", help="case folder (holds case.json)")
    p_score.add_argument("attempt", help="the trainee's plan (.vplan.json or DICOM SR)")
    p_score.add_argument("--time-s", type=_seconds, default=0.0, metavar="S",
                         help="time the trainee took, in seconds (reported, not scored)")
    p_score.add_argument("--trainee", default="", metavar="NAME",
                         help="trainee's name for the report")
    p_score.add_argument("--pdf", metavar="FILE", help="trainee report (PDF) to write")
    p_score.add_argument("--show-patient", action="store_true",
                         help="print the CT's patient name and ID in the report "
                         "(off: a trainee report is teaching material)")
    p_score.add_argument("--json", action="store_true", help="print one JSON object")


def case_json(case: TrainingCase) -> dict[str, object]:
    """The JSON description of a training case (no patient data)."""
    return {
        "id": case.case_id,
        "title": case.title,
        "description": case.description,
        "folder": str(case.folder),
        "ct": "demo" if case.ct_path is None else str(case.ct_path),
        "reference": "automatic" if case.reference_path is None else str(case.reference_path),
        "reference_kind": case.reference_kind,
        "levels": list(case.levels),
        "gauge": case.gauge,
        "fluoro_only": case.fluoro_only,
    }


def cmd_cases(args: argparse.Namespace) -> int:
    from planning.training import builtin_library, list_cases

    library = Path(args.library) if args.library else builtin_library()
    cases, problems = list_cases(library)
    if args.json:
        print(json.dumps({"library": str(library), "cases": [case_json(c) for c in cases],
                          "problems": problems}))
        return EXIT_OK
    print(f"Case library {library}: {len(cases)} case{'s' if len(cases) != 1 else ''}")
    for c in cases:
        mode = "  fluoroscopy only" if c.fluoro_only else ""
        print(f"  {c.title}  [{c.case_id}]  levels {', '.join(c.levels)}  "
              f"reference: {c.reference_kind}  CT: {c.ct_label}{mode}")
    for line in problems:
        print(f"problem: {line}")
    print(DISCLAIMER)
    return EXIT_OK


def cmd_train_score(args: argparse.Namespace) -> int:
    """Exit 0 when the attempt passes, 1 when it fails; errors raise (exit 2 in `main`)."""
    from app.export_job import SOFTWARE_VERSION
    from planning.interop.any_plan import load_any_plan
    from planning.interop.plan_file import FrameMismatchError, check_frame
    from planning.training import check_attempt, load_case, open_case, score_attempt

    case = load_case(args.case)  # bad inputs are refused before the CT is read
    attempt = load_any_plan(args.attempt)
    progress = stderr_progress()
    opened = open_case(case, progress=progress)
    volume, anatomy, reference = opened.volume, opened.anatomy, opened.reference
    try:
        attempt = check_frame(attempt, volume.frame_of_reference_uid)
    except FrameMismatchError as exc:
        raise CliError(f"'{args.attempt}' is not a plan on this case's CT: {exc}") from exc
    results = check_attempt(attempt, opened.context)
    score = score_attempt(reference, attempt, results, args.time_s)
    written = None
    if args.pdf:
        from planning.report.model import TraineeReport
        from planning.report.trainee_pdf import write_trainee_report

        written = write_trainee_report(args.pdf, TraineeReport(
            case, score, volume, attempt, reference, anatomy=anatomy, results=results,
            trainee_name=args.trainee, show_patient=args.show_patient,
            software_version=SOFTWARE_VERSION,
        ), progress)
    if args.json:
        out = {"case": case_json(case), "trainee": args.trainee, **score.to_json(),
               "pdf": None if written is None else str(written)}
        print(json.dumps(out))
    else:
        print(f"Case: {case.title}  ({', '.join(case.levels)}; reference: "
              f"{case.reference_kind})")
        print(f"{'needle':9s} {'entry':>7s} {'tip':>7s} {'angle':>6s} {'canal':>7s} grade "
              f"{'points':>13s}  result")
        for n in (*score.needles, *score.extra):
            def num(v: float | None, unit: str) -> str:
                return "—" if v is None else f"{v:.1f}{unit}"

            points = "extra" if n.is_extra else f"{n.points:.1f} / {n.max_points:g}"
            result = f"FAILED ({n.failure})" if n.failed else "extra" if n.is_extra else "ok"
            print(f"{n.label:9s} {num(n.entry_error_mm, 'mm'):>7s} "
                  f"{num(n.tip_error_mm, 'mm'):>7s} {num(n.angle_error_deg, '°'):>6s} "
                  f"{num(n.clearance_mm, 'mm'):>7s} {n.grade or '—':^5s} {points:>13s}  "
                  f"{result}")
            for reason in n.reasons:
                print(f"      {reason}")
        print(score.summary())
        if written is not None:
            print(f"Written: {written}")
        print(DISCLAIMER)
    return EXIT_OK if score.passed else EXIT_ERROR
