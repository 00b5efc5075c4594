"""Training mode: cases with a hidden reference plan, and the score of a trainee's attempt.

A **case** is a CT plus a reference plan the trainee does not see while planning: an
expert's saved plan, or the automatic planner's proposal. A **case library** is a folder
with one sub-folder per case, each holding a ``case.json``::

    {"format": "vertebroplan-case", "version": 1,
     "title": "L1 fracture and L2", "description": "…",
     "ct": "ct/" | "scan.nii.gz" | "demo",
     "reference": "reference.vplan.json" | "reference_sr.dcm" | "automatic",
     "levels": ["L1", "L2"], "gauge": "11G", "fluoro_only": false,
     "labels": "labels.nii.gz", "label_table": "totalsegmentator"}

Paths are relative to the case folder. ``"demo"`` is the built-in synthetic spine CT (its
anatomy is its ground truth). ``labels``/``label_table`` are optional: a vertebra label map
gives a real CT's case a trustworthy anatomy; without one the anatomy is found in the CT.

The **score** (`score_attempt`) compares each reference needle with the trainee's needle
at the same level and side, under a `Rubric` simple enough to say in a sentence per line
(`Rubric.describe`). Safety comes first: a needle the checks call unsafe, or one that enters
the spinal canal at all, scores nothing and fails the attempt however close it is. How one
needle scores is in `planning.training_rubric`; here the needles add up to the attempt's.

Everything here is a pure function of its inputs (no clock, no randomness), so the same
attempt always gets the same score: what a trainee is told can be checked by anyone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planning.check_result import SafetyLimits
from planning.checks import CheckContext, CheckResult, check
from planning.errors import VertebroPlanError
from planning.interop.json_files import JsonWording, read_json
from planning.plan import Plan, PlanError, Side, gauge, validate_level
from planning.progress import Progress, no_progress
from planning.training_rubric import DEFAULT_RUBRIC, NeedleScore, Rubric, score_extra, score_needle

if TYPE_CHECKING:  # loading CTs and anatomies is heavy: imported only where used
    from planning.anatomy.model import Anatomy
    from planning.volume import Volume

CASE_FILE = "case.json"
CASE_FORMAT = "vertebroplan-case"
CASE_VERSION = 1
DEMO_CT = "demo"
AUTOMATIC_REFERENCE = "automatic"
DEFAULT_LABEL_TABLE = "totalsegmentator"
_CASE_JSON_WORDING = JsonWording.of(
    "training case file", missing=f"'{{path}}' does not exist: a case folder holds a {CASE_FILE}")


class TrainingCaseError(VertebroPlanError, ValueError):
    """A training case cannot be used: its ``case.json`` is missing or wrong, or its CT or
    reference plan cannot be found or does not fit. The message names the file."""


# ---- cases ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingCase:
    """One case of a library, as its ``case.json`` describes it (paths resolved).

    ``ct_path`` is None for the built-in demo CT (``uses_demo_ct``); ``reference_path`` is
    None when the reference is the automatic planner's proposal.
    """

    case_id: str
    folder: Path
    title: str
    description: str
    ct_path: Path | None
    uses_demo_ct: bool
    reference_path: Path | None
    levels: tuple[str, ...]
    gauge: str
    fluoro_only: bool
    labels_path: Path | None = None
    label_table: str = DEFAULT_LABEL_TABLE

    @property
    def reference_kind(self) -> str:
        """"saved plan" or "automatic": how the reference was made, for lists and reports."""
        return "automatic" if self.reference_path is None else "saved plan"

    @property
    def ct_label(self) -> str:
        """The CT in a few words: "built-in demo CT" or its path relative to the case."""
        if self.ct_path is None:
            return "built-in demo CT"
        try:
            return str(self.ct_path.relative_to(self.folder))
        except ValueError:
            return str(self.ct_path)


def builtin_library() -> Path:
    """The case library shipped with VertebroPlan (``resources/training``).

    Found through ``resources.__path__``, as the stylesheet is: an editable install may
    present `resources` as a namespace package.
    """
    import resources

    for folder in resources.__path__:
        library = Path(folder) / "training"
        if library.is_dir():
            return library
    raise TrainingCaseError(
        f"the built-in case library (resources/training) is missing from "
        f"{', '.join(resources.__path__)}; reinstall VertebroPlan"
    )


def _field(data: dict[str, Any], key: str, kind: type, what: str, path: Path,
           default: Any = None) -> Any:
    """``data[key]`` checked to be of ``kind``; a missing key gives ``default`` (or, when
    that is None, an error naming the file and the key)."""
    if key not in data:
        if default is None:
            raise TrainingCaseError(f"'{path}': \"{key}\" is missing ({what})")
        return default
    value = data[key]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise TrainingCaseError(
            f"'{path}': \"{key}\" must be {what}, got {json.dumps(value)[:60]}"
        )
    return value


def _case_path(folder: Path, text: str, key: str, path: Path) -> Path:
    """A path of ``case.json`` resolved against the case folder; it must exist."""
    if not text.strip():
        raise TrainingCaseError(f"'{path}': \"{key}\" must not be empty")
    resolved = (folder / text).resolve()
    if not resolved.exists():
        raise TrainingCaseError(f"'{path}': \"{key}\": '{resolved}' does not exist")
    return resolved


def load_case(folder: str | Path) -> TrainingCase:
    """Read and validate the ``case.json`` of a case folder.

    Raises
    ------
    TrainingCaseError
        The folder or its ``case.json`` is missing, not JSON, of another format, or a value
        is wrong (an unknown level, a CT or reference file that does not exist, …); the
        message names the file and the key.
    """
    root = Path(folder)
    path = root / CASE_FILE
    if not root.is_dir():
        raise TrainingCaseError(f"'{root}' is not a folder: a case is a folder with a {CASE_FILE}")
    data = read_json(path, TrainingCaseError, _CASE_JSON_WORDING)
    if not isinstance(data, dict):
        raise TrainingCaseError(f"'{path}' must hold a JSON object")
    if data.get("format") != CASE_FORMAT:
        raise TrainingCaseError(
            f"'{path}': \"format\" must be \"{CASE_FORMAT}\", got {data.get('format')!r}"
        )
    version = _field(data, "version", int, "an integer", path)
    if not 1 <= version <= CASE_VERSION:
        raise TrainingCaseError(
            f"'{path}': version {version} is not one this VertebroPlan reads "
            f"(1 to {CASE_VERSION}); update VertebroPlan"
        )
    title = _field(data, "title", str, "a string", path).strip()
    if not title:
        raise TrainingCaseError(f"'{path}': \"title\" must not be empty")
    description = _field(data, "description", str, "a string", path, default="")
    ct_text = _field(data, "ct", str, f'a path to a DICOM folder or NIfTI file, or "{DEMO_CT}"',
                     path)
    uses_demo = ct_text.strip().lower() == DEMO_CT
    ct_path = None if uses_demo else _case_path(root, ct_text, "ct", path)
    ref_text = _field(data, "reference", str,
                      f'a path to a .vplan.json or DICOM SR plan, or "{AUTOMATIC_REFERENCE}"',
                      path)
    automatic = ref_text.strip().lower() == AUTOMATIC_REFERENCE
    reference_path = None if automatic else _case_path(root, ref_text, "reference", path)
    if reference_path is not None and reference_path.is_dir():
        raise TrainingCaseError(f"'{path}': \"reference\": '{reference_path}' is a folder, "
                                "not a plan file")
    raw_levels = _field(data, "levels", list, 'a list of levels such as ["L1", "L2"]', path)
    if not raw_levels:
        raise TrainingCaseError(f"'{path}': \"levels\" must name at least one level")
    levels: list[str] = []
    for n, item in enumerate(raw_levels):
        if not isinstance(item, str):
            raise TrainingCaseError(f"'{path}': levels[{n}] must be a string such as \"L1\"")
        try:
            name = validate_level(item)
        except PlanError as exc:
            raise TrainingCaseError(f"'{path}': levels[{n}]: {exc}") from exc
        if name in levels:
            raise TrainingCaseError(f"'{path}': levels[{n}]: {name} is listed twice")
        levels.append(name)
    gauge_text = _field(data, "gauge", str, 'a needle gauge such as "11G"', path,
                        default="11G")
    try:
        needle = gauge(gauge_text).name
    except PlanError as exc:
        raise TrainingCaseError(f"'{path}': \"gauge\": {exc}") from exc
    fluoro_only = _field(data, "fluoro_only", bool, "true or false", path, default=False)
    labels_text = _field(data, "labels", str, "a path to a vertebra label map (NIfTI)", path,
                         default="")
    labels_path = _case_path(root, labels_text, "labels", path) if labels_text else None
    if labels_path is not None and uses_demo:
        raise TrainingCaseError(f"'{path}': \"labels\" cannot be used with the demo CT "
                                "(its anatomy is its ground truth)")
    label_table = _field(data, "label_table", str, 'a preset ("totalsegmentator", "verse") '
                         "or a path to a JSON label table", path, default=DEFAULT_LABEL_TABLE)
    from planning.anatomy.label_tables import PRESETS

    if label_table.strip().lower() not in PRESETS:
        label_table = str(_case_path(root, label_table, "label_table", path))
    return TrainingCase(
        case_id=root.name,
        folder=root.resolve(),
        title=title,
        description=description.strip(),
        ct_path=ct_path,
        uses_demo_ct=uses_demo,
        reference_path=reference_path,
        levels=tuple(levels),
        gauge=needle,
        fluoro_only=fluoro_only,
        labels_path=labels_path,
        label_table=label_table,
    )


def list_cases(library: str | Path) -> tuple[list[TrainingCase], list[str]]:
    """The cases of a library folder, sorted by title, and one line per broken case.

    A sub-folder whose ``case.json`` is missing or wrong is skipped and reported (so one
    broken case does not hide the others); hidden folders (".name") are ignored.

    Raises
    ------
    TrainingCaseError
        ``library`` is not a folder.
    """
    root = Path(library)
    if not root.is_dir():
        raise TrainingCaseError(f"the case library '{root}' is not a folder")
    cases: list[TrainingCase] = []
    problems: list[str] = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            cases.append(load_case(sub))
        except TrainingCaseError as exc:
            problems.append(f"{sub.name}: {exc}")
    cases.sort(key=lambda c: (c.title.casefold(), c.case_id))
    return cases, problems


# ---- the case's CT, anatomy and reference ------------------------------------------------
def load_case_volume(case: TrainingCase, progress: Progress | None = None) -> Volume:
    """The case's CT: the built-in demo CT (from the user's cache, made once) or its file."""
    from planning.io import load_path

    if case.uses_demo_ct:
        from planning.demo import demo_ct_path

        return load_path(demo_ct_path(progress), progress=progress)
    assert case.ct_path is not None
    return load_path(case.ct_path, progress=progress)


def load_case_anatomy(
    case: TrainingCase, volume: Volume, progress: Progress | None = None
) -> Anatomy:
    """The anatomy every attempt at this case is checked on: the demo CT's ground truth,
    the case's label map, or (neither) the anatomy found in the CT.

    Use this one anatomy for the reference and for the trainee's checks, so every trainee
    of a case is measured against the same canal.
    """
    from planning.anatomy_source import (
        DEMO_TRUTH,
        LABELS,
        AnatomySource,
        is_demo_ct,
        load_anatomy,
    )

    if case.uses_demo_ct:
        if not is_demo_ct(volume):
            raise TrainingCaseError(
                f"case '{case.case_id}' is on the demo CT, but the CT given is another one"
            )
        return load_anatomy(volume, AnatomySource(DEMO_TRUTH), progress)
    if case.labels_path is not None:
        return load_anatomy(volume, AnatomySource(LABELS, labels_path=Path(case.labels_path),
                                                  label_table=case.label_table), progress)
    return load_anatomy(volume, AnatomySource(), progress)


def load_reference(
    case: TrainingCase,
    *,
    volume: Volume,
    anatomy: Anatomy | None = None,
    context: CheckContext | None = None,
    progress: Progress | None = None,
) -> Plan:
    """The case's reference plan on ``volume``, restricted to the case's levels.

    A saved reference (.vplan.json or DICOM SR) must belong to this CT's Frame of Reference
    and hold at least one needle at every level of the case. An automatic reference is the
    automatic planner's proposal on ``anatomy`` (``context`` is built from it if not given)
    for the case's levels, starting with the case's gauge.

    Raises
    ------
    TrainingCaseError
        The reference cannot be read, belongs to another CT, misses a level, or (automatic)
        there is no anatomy or the planner finds no safe path at a level.
    """
    if case.reference_path is not None:
        return _saved_reference(case, case.reference_path, volume)
    if anatomy is None:
        raise TrainingCaseError(
            f"case '{case.case_id}': the automatic reference needs the anatomy of the CT "
            "(the spine has not been found)"
        )
    missing = [lv for lv in case.levels if lv not in anatomy.levels]
    if missing:
        found = ", ".join(anatomy.levels) or "none"
        raise TrainingCaseError(
            f"case '{case.case_id}': {', '.join(missing)} not found in the CT's anatomy "
            f"(levels found: {found})"
        )
    from planning.autoplan import propose

    ctx = context or CheckContext.build(volume, anatomy)
    proposal = propose(volume, anatomy, ctx, list(case.levels), case.gauge, progress)
    unplanned = [lv for lv in case.levels if lv not in proposal.plan.levels]
    if unplanned:
        why = "; ".join(f"{lv}: {proposal.omitted.get(lv, 'no safe path')}" for lv in unplanned)
        raise TrainingCaseError(
            f"case '{case.case_id}': the automatic planner proposes no reference at {why}"
        )
    return proposal.plan


def _saved_reference(case: TrainingCase, path: Path, volume: Volume) -> Plan:
    from planning.interop.any_plan import load_any_plan
    from planning.interop.plan_file import FrameMismatchError, check_frame

    try:
        plan = check_frame(load_any_plan(path), volume.frame_of_reference_uid)
    except FrameMismatchError as exc:
        raise TrainingCaseError(f"the reference plan '{path}' does not fit the case's CT: {exc}"
                                ) from exc
    except VertebroPlanError as exc:
        raise TrainingCaseError(f"the reference plan of case '{case.case_id}' cannot be "
                                f"read: {exc}") from exc
    kept = tuple(t for t in plan.trajectories if t.level in case.levels)
    missing = [lv for lv in case.levels if all(t.level != lv for t in kept)]
    if missing:
        raise TrainingCaseError(
            f"the reference plan '{path}' has no needle at {', '.join(missing)} "
            f"(levels of the case: {', '.join(case.levels)})"
        )
    return replace(plan, trajectories=kept)


@dataclass(frozen=True, eq=False)
class OpenedCase:
    """A case ready to be attempted: its CT, the one anatomy every attempt is checked on,
    the checks' context on it, and the hidden reference."""

    case: TrainingCase
    volume: Volume
    anatomy: Anatomy
    context: CheckContext
    reference: Plan


def open_case(case: TrainingCase, *, limits: SafetyLimits | None = None,
              progress: Progress | None = None) -> OpenedCase:
    """Load the case's CT and anatomy, build the checks and the reference, in the order the
    window, the command line and the tests all need them (4 steps of ``progress``)."""
    progress = progress or no_progress()
    progress.report(0, 4, "Loading the case's CT")
    volume = load_case_volume(case, progress)
    progress.report(1, 4, "Finding the anatomy")
    anatomy = load_case_anatomy(case, volume, progress)
    progress.report(2, 4, "Preparing the checks")
    context = CheckContext.build(volume, anatomy, limits)
    progress.report(3, 4, "Preparing the reference")
    reference = load_reference(case, volume=volume, anatomy=anatomy, context=context,
                               progress=progress)
    return OpenedCase(case, volume, anatomy, context, reference)


def check_attempt(attempt: Plan, context: CheckContext) -> dict[tuple[str, Side], CheckResult]:
    """Check every needle of an attempt (the pair check included), keyed by (level, side)."""
    return {t.key: check(t, context, attempt) for t in attempt.trajectories}


# ---- the attempt's score -------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingScore:
    """The score of one attempt at a case (see `Rubric` for how it is made)."""

    needles: tuple[NeedleScore, ...]
    """One per reference needle, in the plan's order (cranial to caudal, left first)."""
    extra: tuple[NeedleScore, ...]
    """Needles the trainee placed where the reference has none."""
    points: float
    max_points: float
    percent: float
    passed: bool
    time_s: float
    rubric: Rubric = field(default=DEFAULT_RUBRIC)

    @property
    def failed_needles(self) -> tuple[NeedleScore, ...]:
        return tuple(n for n in (*self.needles, *self.extra) if n.failed)

    def to_json(self) -> dict[str, Any]:
        """A plain dictionary (JSON-ready; numbers rounded to 0.01)."""
        return {
            "passed": self.passed,
            "percent": self.percent,
            "points": self.points,
            "max_points": self.max_points,
            "time_s": round(self.time_s, 2),
            "needles": [n.to_json() for n in self.needles],
            "extra": [n.to_json() for n in self.extra],
            "rubric": {**self.rubric.to_json(), "sentences": self.rubric.describe()},
        }

    def summary(self) -> str:
        """One line: "PASS: 182.4 of 200 points (91.2 %) in 4 min 12 s"."""
        verdict = "PASS" if self.passed else "FAIL"
        line = (f"{verdict}: {self.points:g} of {self.max_points:g} points "
                f"({self.percent:g} %) in {format_duration(self.time_s)}")
        failed = self.failed_needles
        if failed:
            line += "; failed: " + ", ".join(
                f"{n.label} ({n.failure})" for n in failed)
        elif not self.passed:
            line += f"; below the pass mark of {self.rubric.pass_percent:g} %"
        return line


def format_duration(seconds: float) -> str:
    """"4 min 12 s", "45 s", "1 h 02 min"."""
    s = round(max(0.0, float(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def score_attempt(
    reference: Plan,
    attempt: Plan,
    results: Mapping[tuple[str, Side], CheckResult],
    time_s: float,
    rubric: Rubric = DEFAULT_RUBRIC,
) -> TrainingScore:
    """Score a trainee's attempt against the reference plan (see `Rubric`).

    Parameters
    ----------
    reference
        The case's reference plan (`load_reference`); needles in patient LPS mm.
    attempt
        The trainee's plan on the same CT.
    results
        The check of each attempt needle, keyed by (level, Side) (`check_attempt`). A needle
        without a result cannot be shown to be safe, so it earns nothing.
    time_s
        Time the trainee took, in seconds (reported, not scored).
    rubric
        Thresholds and points.

    Returns
    -------
    TrainingScore
        Deterministic: the same inputs give an identical score.
    """
    if not reference.trajectories:
        raise ValueError("the reference plan has no needles: there is nothing to score")
    if not math.isfinite(time_s) or time_s < 0.0:
        raise ValueError(f"time_s must be a finite number of seconds ≥ 0, got {time_s}")
    scored = []
    for ref in reference.trajectories:
        att = attempt.get(ref.level, ref.side)
        scored.append(score_needle(ref, att, None if att is None else results.get(ref.key),
                                    rubric))
    needles = tuple(scored)
    extra = tuple(score_extra(t, results.get(t.key)) for t in attempt.trajectories
                  if reference.get(t.level, t.side) is None)
    points = round(sum(n.points for n in needles), 1)
    max_points = round(sum(n.max_points for n in needles), 1)
    percent = round(100.0 * points / max_points, 1)
    failed = any(n.failed for n in (*needles, *extra))
    return TrainingScore(
        needles=needles,
        extra=extra,
        points=points,
        max_points=max_points,
        percent=percent,
        passed=percent >= rubric.pass_percent and not failed,
        time_s=float(time_s),
        rubric=rubric,
    )
