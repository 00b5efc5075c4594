"""Training mode on the demo CT: cases load (or are refused with the file named), a trainee
on the reference scores full marks, a canal breach fails whatever else, and every score is
reproducible and moves the right way with the error."""

from __future__ import annotations

import itertools
import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from planning.autoplan import propose
from planning.checks import CheckContext, Status, check
from planning.demo import demo_uids
from planning.interop.dicom_sr import write_plan_sr
from planning.interop.plan_file import load_plan, save_plan
from planning.plan import Plan, Side, Trajectory
from planning.training import (
    TrainingCaseError,
    builtin_library,
    check_attempt,
    format_duration,
    list_cases,
    load_case,
    load_reference,
    open_case,
    score_attempt,
)
from planning.training_rubric import (
    DEFAULT_RUBRIC,
    SAFE_GRADE,
    Rubric,
    angle_between_deg,
    entry_error_mm,
)

SAVED = "l1-l2-saved"
AUTOMATIC = "l3-automatic"
FLUORO = "t12-fluoro"


@pytest.fixture(scope="module")
def demo():
    """The built-in saved case, its CT (the cached demo series), anatomy and reference."""
    case = load_case(builtin_library() / SAVED)
    opened = open_case(case)
    volume, anatomy, ctx, reference = (opened.volume, opened.anatomy, opened.context,
                                       opened.reference)
    return case, volume, anatomy, ctx, reference


def _score(demo, attempt: Plan, time_s: float = 60.0, rubric: Rubric = DEFAULT_RUBRIC):
    *_, ctx, reference = demo
    return score_attempt(reference, attempt, check_attempt(attempt, ctx), time_s, rubric)


def _medially(t: Trajectory, anatomy, mm: float) -> Trajectory:
    """The whole needle shifted ``mm`` towards the midline of its vertebra."""
    return t.translated(-anatomy.levels[t.level].left_lps * t.side.lps_sign * mm)


def _smallest_breach(demo, t: Trajectory) -> tuple[Trajectory, float]:
    """The needle shifted medially by the smallest 0.5 mm step that makes the real check
    find it in the canal, and that shift."""
    _, _, anatomy, ctx, _ = demo
    for mm in np.arange(0.5, 12.01, 0.5):
        moved = _medially(t, anatomy, float(mm))
        if check(moved, ctx).breach_grade != SAFE_GRADE:
            return moved, float(mm)
    raise AssertionError(f"{t.label} does not reach the canal within 12 mm")


# ---- the built-in library ------------------------------------------------------------------
def test_builtin_library_has_its_cases_sorted_and_no_problems() -> None:
    cases, problems = list_cases(builtin_library())
    assert problems == []
    assert [c.case_id for c in cases] == [AUTOMATIC, SAVED, FLUORO]  # by title: 1 ·, 2 ·, 3 ·
    by_id = {c.case_id: c for c in cases}
    saved = by_id[SAVED]
    assert saved.uses_demo_ct and saved.ct_path is None
    assert saved.reference_path == builtin_library().resolve() / SAVED / "reference.vplan.json"
    assert saved.levels == ("L1", "L2") and saved.gauge == "11G"
    assert saved.reference_kind == "saved plan" and not saved.fluoro_only
    assert by_id[AUTOMATIC].reference_path is None
    assert by_id[AUTOMATIC].reference_kind == "automatic"
    assert by_id[FLUORO].fluoro_only and by_id[FLUORO].levels == ("T12",)
    assert all(c.title and c.description for c in cases)


def test_saved_reference_is_on_the_demo_frame_and_safe(demo) -> None:
    _, volume, _, ctx, reference = demo
    saved = load_plan(builtin_library() / SAVED / "reference.vplan.json")
    assert saved.frame_of_reference_uid == demo_uids()["frame_of_reference_uid"]
    assert volume.frame_of_reference_uid == saved.frame_of_reference_uid  # deterministic UIDs
    assert reference.levels == ("L1", "L2") and len(reference.trajectories) == 4
    for t in reference.trajectories:
        r = check(t, ctx, reference)
        assert r.status is Status.SAFE, (t.label, r.reasons)
        assert r.breach_grade == SAFE_GRADE and r.canal_clearance_mm > 2.0


@pytest.mark.parametrize("case_id", [AUTOMATIC, FLUORO])
def test_automatic_reference_covers_the_case_levels_and_is_safe(demo, case_id) -> None:
    _, volume, anatomy, ctx, _ = demo
    case = load_case(builtin_library() / case_id)
    reference = load_reference(case, volume=volume, anatomy=anatomy, context=ctx)
    assert reference.levels == case.levels
    assert {t.side for t in reference.trajectories} == {Side.LEFT, Side.RIGHT}
    assert reference.frame_of_reference_uid == volume.frame_of_reference_uid
    for r in check_attempt(reference, ctx).values():
        assert r.status is not Status.UNSAFE and r.breach_grade == SAFE_GRADE


# ---- scoring ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case_id", [SAVED, AUTOMATIC])
def test_trainee_on_the_reference_scores_full_marks(demo, case_id) -> None:
    _, volume, anatomy, ctx, _ = demo
    case = load_case(builtin_library() / case_id)
    reference = load_reference(case, volume=volume, anatomy=anatomy, context=ctx)
    attempt = Plan(reference.study_uid, reference.series_uid, reference.frame_of_reference_uid,
                   tuple(replace(t, note="trainee") for t in reference.trajectories))
    score = score_attempt(reference, attempt, check_attempt(attempt, ctx), 245.0)
    assert score.passed and score.percent == 100.0
    assert score.points == score.max_points == 100.0 * len(reference.trajectories)
    assert score.extra == () and score.failed_needles == ()
    for n in score.needles:
        assert not n.failed and n.points == n.max_points == 100.0
        assert (n.tip_points, n.entry_points, n.angle_points) == (40.0, 30.0, 30.0)
        assert n.tip_error_mm == 0.0 and n.entry_error_mm == pytest.approx(0.0, abs=1e-9)
        assert n.angle_error_deg is not None and n.angle_error_deg < 1e-6
        assert n.grade == SAFE_GRADE and n.status is Status.SAFE
        assert n.reasons == ("On the reference: full points",)
    assert score.summary() == (f"PASS: {score.max_points:g} of {score.max_points:g} points "
                               "(100 %) in 4 min 05 s")


def test_canal_breach_fails_the_needle_whatever_else(demo) -> None:
    _, _, _, ctx, reference = demo
    left_l2 = reference.get("L2", Side.LEFT)
    assert left_l2 is not None
    breaching, shift_mm = _smallest_breach(demo, left_l2)
    assert shift_mm <= 5.0  # close to the reference: it would have scored well
    attempt = reference.with_trajectory(breaching)
    result = check(breaching, ctx, attempt)
    assert result.status is Status.UNSAFE and result.breach_grade != SAFE_GRADE
    score = _score(demo, attempt)
    bad = next(n for n in score.needles if n.label == "Left L2")
    assert bad.failed and bad.points == 0.0
    assert bad.tip_error_mm is not None and bad.tip_error_mm <= 5.0 + 1e-9
    assert bad.grade == result.breach_grade and bad.status is Status.UNSAFE
    assert bad.clearance_mm == pytest.approx(result.canal_clearance_mm)
    assert "canal breach fails the needle whatever else" in bad.reasons[0]
    assert f"(grade {result.breach_grade})" in bad.reasons[0]
    others = [n for n in score.needles if n is not bad]
    assert all(n.points == 100.0 and not n.failed for n in others)
    assert score.percent == 75.0  # above the pass mark …
    assert not score.passed  # … and still a fail
    assert score.summary().startswith("FAIL: 300 of 400 points (75 %)")
    assert f"Left L2 (canal breach, grade {result.breach_grade})" in score.summary()


def test_unsafe_needle_outside_the_canal_fails_too(demo) -> None:
    _, _, _, ctx, reference = demo
    right_l1 = reference.get("L1", Side.RIGHT)
    assert right_l1 is not None
    through = right_l1.moved(target_lps=right_l1.target + 25.0 * right_l1.direction)
    attempt = reference.with_trajectory(through)
    result = check(through, ctx, attempt)
    assert result.status is Status.UNSAFE and result.breach_grade == SAFE_GRADE
    bad = next(n for n in _score(demo, attempt).needles if n.label == "Right L1")
    assert bad.failed and bad.points == 0.0 and bad.failure == "unsafe"
    assert bad.reasons[0].startswith("Unsafe: an unsafe needle fails whatever else")
    assert any("anterior cortex" in r for r in bad.reasons)


def test_scores_are_reproducible(demo) -> None:
    _, _, anatomy, _, reference = demo
    moved = [_medially(t, anatomy, -1.5).moved(target_lps=t.target + np.array([1.0, -2.0, 1.5]))
             for t in reference.trajectories[:3]]
    attempt = Plan(reference.study_uid, reference.series_uid, reference.frame_of_reference_uid,
                   tuple(moved))
    first, second = _score(demo, attempt, 100.0), _score(demo, attempt, 100.0)
    assert first == second
    assert json.dumps(first.to_json()) == json.dumps(second.to_json())
    assert json.loads(json.dumps(first.to_json())) == first.to_json()  # plain JSON types
    # a context built again from the same CT gives the same score too
    _, volume, _, _, _ = demo
    again = score_attempt(reference, attempt,
                          check_attempt(attempt, CheckContext.build(volume, anatomy)), 100.0)
    assert again == first


def test_points_fall_as_the_tip_falls_short(demo) -> None:
    _, _, _, _, reference = demo
    t = reference.get("L2", Side.RIGHT)
    assert t is not None
    points, tips = [], []
    for short_mm in (0.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0):
        needle = t.moved(target_lps=t.target - short_mm * t.direction)
        n = next(n for n in _score(demo, reference.with_trajectory(needle)).needles
                 if n.label == "Right L2")
        assert not n.failed, (short_mm, n.reasons)
        assert n.tip_error_mm == pytest.approx(short_mm)
        assert n.entry_points == 30.0 and n.angle_points == 30.0  # same line
        points.append(n.points)
        tips.append(n.tip_points)
    assert tips[:3] == [40.0, 40.0, 40.0] and tips[-2:] == [0.0, 0.0]
    assert tips[4] == pytest.approx(40.0 * (12 - 6) / 9, abs=0.05)
    assert all(b < a for a, b in itertools.pairwise(points[2:8])), points
    assert all(b <= a for a, b in itertools.pairwise(points)), points


def test_points_fall_as_the_needle_turns(demo) -> None:
    """Rotated about its tip, away from the canal: angle and entry errors grow together."""
    _, _, anatomy, _, reference = demo
    t = reference.get("L1", Side.LEFT)
    assert t is not None
    up = anatomy.levels["L1"].superior_lps
    k = up - float(up @ t.direction) * t.direction  # about the vertebra's axis, made
    k = k / np.linalg.norm(k)  # perpendicular to the needle so the angle is exactly ``deg``
    points, angles = [], []
    for deg in (0.0, 2.0, 4.0, 6.0, 8.0, 10.0):
        a = -math.radians(deg) * t.side.lps_sign  # the entry swings laterally
        v = t.entry - t.target
        rotated = (v * math.cos(a) + np.cross(k, v) * math.sin(a)
                   + k * float(k @ v) * (1 - math.cos(a)))
        needle = t.moved(entry_lps=t.target + rotated)
        geo = anatomy.levels["L1"]
        if deg:  # away from the midline (and the canal)
            assert geo.to_local(needle.entry[None])[0, 0] > geo.to_local(t.entry[None])[0, 0]
        n = next(n for n in _score(demo, reference.with_trajectory(needle)).needles
                 if n.label == "Left L1")
        assert not n.failed, (deg, n.reasons)
        assert n.angle_error_deg == pytest.approx(deg, abs=1e-6)
        points.append(n.points)
        angles.append(n.angle_points)
    assert angles[0] == 30.0 and angles[1] == 30.0
    assert all(b < a for a, b in itertools.pairwise(points[1:])), points


def test_missing_needle_scores_nothing_and_fails(demo) -> None:
    _, _, _, _, reference = demo
    attempt = reference.without("L2", Side.RIGHT)
    score = _score(demo, attempt)
    missing = next(n for n in score.needles if n.label == "Right L2")
    assert missing.attempt is None and missing.failed and missing.points == 0.0
    assert missing.failure == "not placed"
    assert missing.reasons == ("Not placed: the reference has a needle here",)
    assert missing.entry_error_mm is missing.tip_error_mm is missing.status is None
    assert score.points == 300.0 and score.percent == 75.0 and not score.passed


def test_extra_needles_earn_nothing_and_fail_only_when_unsafe(demo) -> None:
    _, volume, anatomy, ctx, reference = demo
    l3 = propose(volume, anatomy, ctx, ["L3"]).plan.trajectories
    attempt = replace(reference, trajectories=reference.trajectories + l3)
    score = _score(demo, attempt)
    assert [n.label for n in score.extra] == ["Left L3", "Right L3"]
    assert all(n.is_extra and n.points == 0.0 and n.max_points == 0.0 and not n.failed
               for n in score.extra)
    assert score.extra[0].reasons[0] == "Placed where the reference has no needle: no points"
    assert score.percent == 100.0 and score.passed  # a harmless extra costs nothing

    breaching, _ = _smallest_breach(demo, l3[0])
    attempt = replace(reference, trajectories=(*reference.trajectories, breaching))
    score = _score(demo, attempt)
    assert score.extra[0].failed and score.percent == 100.0 and not score.passed
    assert "Left L3 (canal breach" in score.summary()


def test_needle_without_a_check_cannot_score(demo) -> None:
    _, _, _, ctx, reference = demo
    results = check_attempt(reference, ctx)
    del results[("L1", Side.LEFT)]
    score = score_attempt(reference, reference, results, 10.0)
    unchecked = next(n for n in score.needles if n.label == "Left L1")
    assert unchecked.failed and unchecked.points == 0.0 and unchecked.failure == "not checked"
    assert not score.passed


def test_rubric_in_words_follows_its_numbers() -> None:
    text = " ".join(Rubric().describe())
    for fragment in ("worth 100 points", "tip position 40, entry 30, angle 30",
                     "within 3 mm of the reference tip", "0 at 12 mm", "within 3°", "0 at 15°",
                     "at least 70 %", "scores 0 and fails", "not scored"):
        assert fragment in text, fragment
    strict = Rubric(tip_full_mm=1.0, tip_zero_mm=5.0, pass_percent=90.0)
    assert "within 1 mm of the reference tip" in " ".join(strict.describe())
    assert "at least 90 %" in " ".join(strict.describe())
    with pytest.raises(ValueError, match="tip"):
        Rubric(tip_full_mm=5.0, tip_zero_mm=5.0)
    with pytest.raises(ValueError, match="pass_percent"):
        Rubric(pass_percent=120.0)


def test_a_stricter_rubric_scores_the_same_attempt_lower(demo) -> None:
    _, _, _, _, reference = demo
    t = reference.get("L1", Side.RIGHT)
    assert t is not None
    attempt = reference.with_trajectory(t.moved(target_lps=t.target - 4.0 * t.direction))
    lenient, strict = _score(demo, attempt), _score(demo, attempt,
                                                    rubric=Rubric(tip_full_mm=1.0,
                                                                  tip_zero_mm=5.0))
    assert strict.points < lenient.points and strict.rubric.tip_zero_mm == 5.0


def test_entry_on_the_skin_along_the_same_path_is_no_entry_error() -> None:
    ref = Trajectory("L2", Side.LEFT, (20.0, 100.0, 0.0), (5.0, 55.0, 0.0))
    on_skin = ref.moved(entry_lps=ref.entry - 30.0 * ref.direction)
    assert entry_error_mm(ref, on_skin) == pytest.approx(0.0, abs=1e-9)
    assert angle_between_deg(ref, on_skin) == pytest.approx(0.0, abs=1e-6)
    aside = on_skin.translated((0.0, 0.0, 4.0))  # 4 mm cranial: off the line by 4 mm
    assert entry_error_mm(ref, aside) == pytest.approx(4.0)
    assert format_duration(45) == "45 s" and format_duration(605) == "10 min 05 s"
    assert format_duration(3725) == "1 h 02 min"


def test_bad_time_and_empty_reference_are_refused(demo) -> None:
    _, _, _, ctx, reference = demo
    results = check_attempt(reference, ctx)
    with pytest.raises(ValueError, match="time_s"):
        score_attempt(reference, reference, results, -1.0)
    with pytest.raises(ValueError, match="no needles"):
        score_attempt(Plan(), reference, results, 1.0)


# ---- cases that cannot be used --------------------------------------------------------------
def _write_case(folder: Path, **changes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"format": "vertebroplan-case", "version": 1, "title": "A case",
            "description": "", "ct": "demo", "reference": "automatic", "levels": ["L1"],
            "gauge": "11G", "fluoro_only": False}
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not None}
    (folder / "case.json").write_text(json.dumps(data), encoding="utf-8")
    return folder


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"levels": ["L1", "L9"]}, r"levels\[1\]: 'L9' is not a vertebral level"),
    ({"levels": []}, r'"levels" must name at least one level'),
    ({"levels": ["L1", "l1"]}, r"L1 is listed twice"),
    ({"ct": "missing-ct"}, r'"ct": .*missing-ct\' does not exist'),
    ({"reference": "nothing.vplan.json"}, r'"reference": .*nothing\.vplan\.json\' does not'),
    ({"format": "something-else"}, r'"format" must be "vertebroplan-case"'),
    ({"version": 2}, r"version 2 is not one this VertebroPlan reads"),
    ({"gauge": "9G"}, r"\"gauge\": '9G' is not a known needle gauge"),
    ({"fluoro_only": "yes"}, r'"fluoro_only" must be true or false'),
    ({"title": None}, r'"title" is missing'),
])
def test_bad_case_json_is_refused_naming_the_file(tmp_path: Path, changes, fragment) -> None:
    folder = _write_case(tmp_path / "bad", **changes)
    with pytest.raises(TrainingCaseError, match=fragment) as info:
        load_case(folder)
    assert str(folder / "case.json") in str(info.value)


def test_missing_or_broken_case_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingCaseError, match=r"case\.json' does not exist"):
        load_case(tmp_path / "empty")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "case.json").write_text('{"format": "vertebroplan-case", "title": ', "utf-8")
    with pytest.raises(TrainingCaseError, match=r"is not valid JSON \(line 1"):
        load_case(broken)
    with pytest.raises(TrainingCaseError, match="is not a folder"):
        load_case(tmp_path / "nowhere")


@pytest.mark.parametrize("content", ["[" * 100_000 + "]" * 100_000, "1" * 5_000],
                         ids=["nested too deeply", "an integer of 5000 digits"])
def test_a_case_file_that_breaks_the_json_reader_is_refused_by_name(
        tmp_path: Path, content: str) -> None:
    """What Python's JSON reader raises itself on (RecursionError, an over-long integer's
    ValueError) is a refused case file naming the file, not a traceback."""
    (tmp_path / "case.json").write_text(content, "utf-8")
    with pytest.raises(TrainingCaseError) as info:
        load_case(tmp_path)
    assert str(tmp_path / "case.json") in str(info.value)


def test_list_cases_reports_and_skips_broken_cases(tmp_path: Path) -> None:
    library = tmp_path / "library"
    shutil.copytree(builtin_library() / SAVED, library / "good")
    _write_case(library / "unknown-level", levels=["L9"])
    (library / "no-case-file").mkdir()
    (library / ".hidden").mkdir()
    cases, problems = list_cases(library)
    assert [c.case_id for c in cases] == ["good"]
    assert len(problems) == 2
    assert problems[0].startswith("no-case-file: ") and "case.json' does not exist" in problems[0]
    assert problems[1].startswith("unknown-level: ") and "'L9'" in problems[1]
    with pytest.raises(TrainingCaseError, match="is not a folder"):
        list_cases(tmp_path / "no-library")


def test_case_paths_resolve_against_the_case_folder(tmp_path: Path) -> None:
    folder = _write_case(tmp_path / "real", ct="scan/ct.nii.gz", reference="ref.vplan.json")
    (folder / "scan").mkdir()
    (folder / "scan" / "ct.nii.gz").write_bytes(b"")
    save_plan(Plan(), folder / "ref.vplan.json")
    case = load_case(folder)
    assert not case.uses_demo_ct and case.ct_path == (folder / "scan" / "ct.nii.gz").resolve()
    assert case.reference_path == (folder / "ref.vplan.json").resolve()
    assert case.ct_label == "scan/ct.nii.gz"


# ---- references that do not fit ---------------------------------------------------------------
def test_reference_on_another_frame_or_missing_a_level_is_refused(demo, tmp_path: Path) -> None:
    _, volume, anatomy, ctx, reference = demo
    other = replace(reference, frame_of_reference_uid="1.2.3.4")
    folder = _write_case(tmp_path / "other-frame", reference="ref.vplan.json",
                         levels=["L1", "L2"])
    save_plan(other, folder / "ref.vplan.json")
    with pytest.raises(TrainingCaseError, match=r"ref\.vplan\.json' does not fit the case's CT"):
        load_reference(load_case(folder), volume=volume, anatomy=anatomy, context=ctx)

    folder = _write_case(tmp_path / "short", reference="ref.vplan.json", levels=["L1", "L3"])
    save_plan(reference, folder / "ref.vplan.json")
    with pytest.raises(TrainingCaseError, match=r"has no needle at L3"):
        load_reference(load_case(folder), volume=volume)

    folder = _write_case(tmp_path / "only-l1", reference="ref.vplan.json", levels=["L1"])
    save_plan(reference, folder / "ref.vplan.json")
    only_l1 = load_reference(load_case(folder), volume=volume)
    assert only_l1.levels == ("L1",) and len(only_l1.trajectories) == 2

    broken = _write_case(tmp_path / "broken-ref", reference="ref.vplan.json")
    (broken / "ref.vplan.json").write_text("{", encoding="utf-8")
    with pytest.raises(TrainingCaseError, match=r"reference plan of case 'broken-ref'"):
        load_reference(load_case(broken), volume=volume)


def test_automatic_reference_needs_the_anatomy(demo, tmp_path: Path) -> None:
    _, volume, anatomy, _, _ = demo
    case = load_case(_write_case(tmp_path / "auto"))
    with pytest.raises(TrainingCaseError, match="needs the anatomy"):
        load_reference(case, volume=volume)
    case = load_case(_write_case(tmp_path / "auto-c2", levels=["C2"]))
    with pytest.raises(TrainingCaseError, match=r"C2 not found in the CT's anatomy"):
        load_reference(case, volume=volume, anatomy=anatomy)


def test_reference_as_a_dicom_sr_scores_like_the_saved_plan(demo, tmp_path: Path) -> None:
    _, volume, _, ctx, reference = demo
    folder = _write_case(tmp_path / "sr", reference="reference_sr.dcm", levels=["L1", "L2"])
    write_plan_sr(folder / "reference_sr.dcm", reference, check_attempt(reference, ctx), volume)
    from_sr = load_reference(load_case(folder), volume=volume)
    assert from_sr.levels == ("L1", "L2") and len(from_sr.trajectories) == 4
    score = score_attempt(from_sr, reference, check_attempt(reference, ctx), 1.0)
    assert score.passed and score.percent == 100.0  # the SR keeps the needles within 0.01 mm
    assert all(n.tip_error_mm is not None and n.tip_error_mm < 0.01 for n in score.needles)


def test_label_map_fields_resolve_and_are_refused_on_the_demo_ct(tmp_path: Path) -> None:
    folder = _write_case(tmp_path / "labelled", ct="ct.nii.gz", labels="seg/labels.nii.gz",
                         label_table="my_table.json")
    (folder / "ct.nii.gz").write_bytes(b"")
    (folder / "seg").mkdir()
    (folder / "seg" / "labels.nii.gz").write_bytes(b"")
    (folder / "my_table.json").write_text("{}", encoding="utf-8")
    case = load_case(folder)
    assert case.labels_path == (folder / "seg" / "labels.nii.gz").resolve()
    assert case.label_table == str((folder / "my_table.json").resolve())
    preset = load_case(_write_case(tmp_path / "preset", ct="../labelled/ct.nii.gz",
                                   labels="../labelled/seg/labels.nii.gz", label_table="verse"))
    assert preset.label_table == "verse"
    with pytest.raises(TrainingCaseError, match=r'"labels" cannot be used with the demo CT'):
        load_case(_write_case(tmp_path / "demo-labels", labels="../labelled/ct.nii.gz"))
