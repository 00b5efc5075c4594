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
the spinal canal at all, scores nothing and fails the attempt however close it is.

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

import numpy as np

from planning.checks import CheckContext, CheckResult, Status, breach_grade, check, reason_text
from planning.errors import VertebroPlanError
from planning.plan import Plan, PlanError, Side, Trajectory, gauge, validate_level
from planning.progress import Progress

if TYPE_CHECKING:  # loading CTs and anatomies is heavy: imported only where used
    from planning.anatomy.model import Anatomy
    from planning.volume import Volume

CASE_FILE = "case.json"
CASE_FORMAT = "vertebroplan-case"
CASE_VERSION = 1
DEMO_CT = "demo"
AUTOMATIC_REFERENCE = "automatic"
DEFAULT_LABEL_TABLE = "totalsegmentator"
SAFE_GRADE = breach_grade(0.0)
"""The canal breach grade of a needle that stays out of the canal ("A")."""


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
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise TrainingCaseError(f"'{path}' does not exist: a case folder holds a {CASE_FILE}"
                                ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise TrainingCaseError(f"'{path}' cannot be read: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TrainingCaseError(
            f"'{path}' is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
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


def check_attempt(attempt: Plan, context: CheckContext) -> dict[tuple[str, Side], CheckResult]:
    """Check every needle of an attempt (the pair check included), keyed by (level, side)."""
    return {t.key: check(t, context, attempt) for t in attempt.trajectories}


# ---- the rubric --------------------------------------------------------------------------
@dataclass(frozen=True)
class Rubric:
    """How an attempt is scored: thresholds (mm, degrees) and points, with why.

    Each reference needle is worth ``tip_points + entry_points + angle_points`` (100). A
    part earns its full points up to its ``*_full`` error and nothing from its ``*_zero``
    error, linearly in between: a smooth scale that rewards getting closer without
    punishing the last millimetre of measurement noise.
    """

    tip_points: float = 40.0
    """The tip decides where the cement goes: it weighs most."""
    tip_full_mm: float = 3.0
    """About one needle diameter (11G: 3.05 mm): closer than this is as good as the
    reference, and below the accuracy fluoroscopic guidance can promise."""
    tip_zero_mm: float = 12.0
    """About the width of a lumbar pedicle: a tip this far off is in another place."""
    entry_points: float = 30.0
    entry_full_mm: float = 3.0
    """As for the tip. The entry error is how far the needle, extended back out of the
    patient, passes from the reference entry point: an entry marked on the skin instead of
    on the bone along the same path costs nothing."""
    entry_zero_mm: float = 12.0
    angle_points: float = 30.0
    angle_full_deg: float = 3.0
    """About the precision of a C-arm angle set by hand."""
    angle_zero_deg: float = 15.0
    """The spread of medial angles between levels (≈ 10–25°): beyond this the needle
    follows another path through the pedicle."""
    pass_percent: float = 70.0
    """Roughly every needle within 5–6 mm and 6–7° of the reference."""

    def __post_init__(self) -> None:
        for name, full, zero in (("tip", self.tip_full_mm, self.tip_zero_mm),
                                 ("entry", self.entry_full_mm, self.entry_zero_mm),
                                 ("angle", self.angle_full_deg, self.angle_zero_deg)):
            if not 0.0 <= full < zero:
                raise ValueError(f"Rubric: the {name} error for full points ({full}) must be "
                                 f"below the error for none ({zero})")
        points = (self.tip_points, self.entry_points, self.angle_points)
        if min(points) < 0.0 or sum(points) <= 0.0:
            raise ValueError("Rubric: points must be ≥ 0 and add up to more than 0")
        if not 0.0 <= self.pass_percent <= 100.0:
            raise ValueError(f"Rubric: pass_percent must be 0–100, got {self.pass_percent}")

    @property
    def needle_points(self) -> float:
        """What one reference needle is worth."""
        return self.tip_points + self.entry_points + self.angle_points

    def describe(self) -> list[str]:
        """The rubric as plain sentences, for the training panel and the trainee report."""
        return [
            f"Each needle of the reference plan is worth {self.needle_points:g} points: "
            f"tip position {self.tip_points:g}, entry {self.entry_points:g}, "
            f"angle {self.angle_points:g}.",
            f"Tip: all {self.tip_points:g} points within {self.tip_full_mm:g} mm of the "
            f"reference tip, falling evenly to 0 at {self.tip_zero_mm:g} mm.",
            f"Entry: all {self.entry_points:g} points when the needle, extended back out of "
            f"the patient, passes within {self.entry_full_mm:g} mm of the reference entry "
            f"point, falling evenly to 0 at {self.entry_zero_mm:g} mm.",
            f"Angle: all {self.angle_points:g} points within {self.angle_full_deg:g}° of the "
            f"reference direction, falling evenly to 0 at {self.angle_zero_deg:g}°.",
            "Safety first: a needle the checks find unsafe, or one that enters the spinal "
            f"canal at all (breach grade worse than {SAFE_GRADE}), scores 0 and fails, "
            "however close it is to the reference.",
            "A reference needle that is not placed scores 0 and fails. A needle where the "
            "reference has none earns nothing, and fails the attempt if it is unsafe.",
            f"Pass: at least {self.pass_percent:g} % of the points and no failed needle.",
            "Cautions (e.g. a tip near the anterior cortex) are reported but cost no points. "
            "The time taken is reported, not scored: safety and accuracy come before speed.",
        ]

    def to_json(self) -> dict[str, float]:
        return {
            "tip_points": self.tip_points,
            "tip_full_mm": self.tip_full_mm,
            "tip_zero_mm": self.tip_zero_mm,
            "entry_points": self.entry_points,
            "entry_full_mm": self.entry_full_mm,
            "entry_zero_mm": self.entry_zero_mm,
            "angle_points": self.angle_points,
            "angle_full_deg": self.angle_full_deg,
            "angle_zero_deg": self.angle_zero_deg,
            "pass_percent": self.pass_percent,
        }


DEFAULT_RUBRIC = Rubric()


def _linear_points(error: float, full: float, zero: float, points: float) -> float:
    """``points`` up to ``full``, 0 from ``zero``, linear in between."""
    if error <= full:
        return points
    if error >= zero:
        return 0.0
    return points * (zero - error) / (zero - full)


# ---- the score ---------------------------------------------------------------------------
@dataclass(frozen=True)
class NeedleScore:
    """One needle of the attempt against the reference (or an extra needle, without one).

    Errors are in mm and degrees; ``clearance_mm``, ``grade`` and ``status`` come from the
    attempt needle's check. ``reasons`` explain the points and a failure in words.
    """

    level: str
    side: Side
    reference: Trajectory | None
    attempt: Trajectory | None
    entry_error_mm: float | None
    tip_error_mm: float | None
    angle_error_deg: float | None
    clearance_mm: float | None
    grade: str | None
    status: Status | None
    points: float
    max_points: float
    failed: bool
    reasons: tuple[str, ...]
    tip_points: float = 0.0
    entry_points: float = 0.0
    angle_points: float = 0.0

    @property
    def label(self) -> str:
        """"Left L2"."""
        return f"{self.side.value.capitalize()} {self.level}"

    @property
    def is_extra(self) -> bool:
        """Placed where the reference has no needle."""
        return self.reference is None

    @property
    def failure(self) -> str:
        """Why the needle failed in two or three words ("canal breach, grade C"), or ""."""
        if not self.failed:
            return ""
        if self.attempt is None:
            return "not placed"
        if self.grade is not None and self.grade != SAFE_GRADE:
            return f"canal breach, grade {self.grade}"
        if self.status is None:
            return "not checked"
        return "unsafe"

    def to_json(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(float(v), 2)

        def needle(t: Trajectory | None) -> dict[str, Any] | None:
            if t is None:
                return None
            return {"entry_lps": [r(v) for v in t.entry_lps],
                    "target_lps": [r(v) for v in t.target_lps], "gauge": t.gauge}

        return {
            "level": self.level,
            "side": self.side.value,
            "entry_error_mm": r(self.entry_error_mm),
            "tip_error_mm": r(self.tip_error_mm),
            "angle_error_deg": r(self.angle_error_deg),
            "clearance_mm": r(self.clearance_mm),
            "grade": self.grade,
            "status": None if self.status is None else self.status.value,
            "points": self.points,
            "max_points": self.max_points,
            "tip_points": self.tip_points,
            "entry_points": self.entry_points,
            "angle_points": self.angle_points,
            "failed": self.failed,
            "reasons": list(self.reasons),
            "reference": needle(self.reference),
            "attempt": needle(self.attempt),
        }


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


def angle_between_deg(a: Trajectory, b: Trajectory) -> float:
    """Angle between two needles' directions in degrees (0–180), stable near 0."""
    u, v = a.direction, b.direction
    return math.degrees(math.atan2(float(np.linalg.norm(np.cross(u, v))), float(u @ v)))


def entry_error_mm(reference: Trajectory, attempt: Trajectory) -> float:
    """How far the attempt's needle, extended back out of the patient beyond its entry,
    passes from the reference entry point (mm).

    The ray runs from the attempt's tip back through its entry and on; the nearest point
    of the ray to the reference entry is taken, so an entry marked further out along the
    same path (on the skin instead of the bone) gives no error.
    """
    back = -attempt.direction
    d = reference.entry - attempt.target
    s = max(0.0, float(d @ back))
    return float(np.linalg.norm(d - s * back))


def _safety_failure(result: CheckResult) -> list[str]:
    """Why a checked needle fails on safety, in words (empty when it does not)."""
    breach = result.breach_grade != SAFE_GRADE
    if not breach and result.status is not Status.UNSAFE:
        return []
    if breach:
        head = (f"Enters the spinal canal by {-result.canal_clearance_mm:.1f} mm (grade "
                f"{result.breach_grade}): a canal breach fails the needle whatever else")
    else:
        head = "Unsafe: an unsafe needle fails whatever else"
    others = [reason_text(result, text) for text in result.reasons
              if "enters the spinal canal" not in text]  # said in the first sentence
    return [head, *others]


def _score_needle(ref: Trajectory, att: Trajectory | None, result: CheckResult | None,
                  rubric: Rubric) -> NeedleScore:
    max_points = rubric.needle_points
    if att is None:
        return NeedleScore(ref.level, ref.side, ref, None, None, None, None, None, None, None,
                           0.0, max_points, True,
                           ("Not placed: the reference has a needle here",))
    tip_err = math.dist(ref.target_lps, att.target_lps)
    entry_err = entry_error_mm(ref, att)
    angle_err = angle_between_deg(ref, att)
    tip_pts = round(_linear_points(tip_err, rubric.tip_full_mm, rubric.tip_zero_mm,
                                   rubric.tip_points), 1)
    entry_pts = round(_linear_points(entry_err, rubric.entry_full_mm, rubric.entry_zero_mm,
                                     rubric.entry_points), 1)
    angle_pts = round(_linear_points(angle_err, rubric.angle_full_deg, rubric.angle_zero_deg,
                                     rubric.angle_points), 1)
    base = NeedleScore(
        ref.level, ref.side, ref, att, entry_err, tip_err, angle_err,
        clearance_mm=None if result is None else result.canal_clearance_mm,
        grade=None if result is None else result.breach_grade,
        status=None if result is None else result.status,
        points=0.0, max_points=max_points, failed=True, reasons=(),
    )
    if result is None:
        return replace(base, reasons=("Not checked against the anatomy: its safety is "
                                      "unknown, so it cannot score",))
    safety = _safety_failure(result)
    if safety:
        return replace(base, reasons=tuple(safety))
    reasons = []
    for part, err, unit, pts, most in (
        ("tip", tip_err, "mm", tip_pts, rubric.tip_points),
        ("entry", entry_err, "mm", entry_pts, rubric.entry_points),
        ("angle", angle_err, "°", angle_pts, rubric.angle_points),
    ):
        if pts < most:
            off = f"{err:.1f} {unit}" if unit == "mm" else f"{err:.1f}{unit}"
            reasons.append(f"{part.capitalize()} {off} from the reference: {pts:g} of {most:g} "
                           "points")
    if not reasons:
        reasons.append("On the reference: full points")
    if att.gauge != ref.gauge:
        reasons.append(f"Gauge {att.gauge}; the reference uses {ref.gauge} (not scored)")
    if result.status is Status.CAUTION:
        reasons += [f"Caution (no points lost): {reason_text(result, text)}"
                    for text in result.reasons]
    return replace(base, points=round(tip_pts + entry_pts + angle_pts, 1), failed=False,
                   reasons=tuple(reasons), tip_points=tip_pts, entry_points=entry_pts,
                   angle_points=angle_pts)


def _score_extra(att: Trajectory, result: CheckResult | None) -> NeedleScore:
    reasons = ["Placed where the reference has no needle: no points"]
    if result is None:
        reasons.append("Not checked against the anatomy")
        return NeedleScore(att.level, att.side, None, att, None, None, None, None, None, None,
                           0.0, 0.0, False, tuple(reasons))
    safety = _safety_failure(result)
    return NeedleScore(att.level, att.side, None, att, None, None, None,
                       result.canal_clearance_mm, result.breach_grade, result.status, 0.0, 0.0,
                       bool(safety), tuple(reasons + safety))


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
        scored.append(_score_needle(ref, att, None if att is None else results.get(ref.key),
                                    rubric))
    needles = tuple(scored)
    extra = tuple(_score_extra(t, results.get(t.key)) for t in attempt.trajectories
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
