"""Plan values and the .vplan.json format: round trip, validation with key paths, atomic save."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from planning.interop.plan_file import (
    FrameMismatchError,
    PlanFormatError,
    check_frame,
    load_plan,
    plan_from_dict,
    plan_to_dict,
    save_plan,
)
from planning.plan import Plan, PlanError, Side, Trajectory, gauge, shift_level


def _plan() -> Plan:
    return Plan(
        study_uid="1.2.3",
        series_uid="1.2.3.4",
        frame_of_reference_uid="1.2.3.5",
        trajectories=(
            Trajectory("L2", "right", (-30.5, 60.0, 10.0), (-5.0, 20.0, 12.0), "13G"),
            Trajectory("L1", Side.LEFT, (31.0, 62.0, 40.0), (4.0, 18.0, 38.5), note="fracture"),
            Trajectory("L1", "right", (-31.0, 62.0, 40.0), (-4.0, 18.0, 38.5)),
        ),
    )


def test_trajectory_values() -> None:
    t = Trajectory("l1", "L", [0, 0, 0], [3, 4, 0])
    assert (t.level, t.side, t.gauge) == ("L1", Side.LEFT, "11G")
    assert t.length_mm == pytest.approx(5.0)
    assert t.radius_mm == pytest.approx(3.05 / 2)
    assert t.label == "Left L1"
    assert t.translated([1, 1, 1]).entry_lps == (1.0, 1.0, 1.0)
    assert gauge("13").outer_diameter_mm == pytest.approx(2.41)
    assert shift_level("T12", 1) == "L1" and shift_level("L1", -1) == "T12"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"level": "L6"}, "not a vertebral level"),
        ({"side": "middle"}, "not a side"),
        ({"gauge": "12G"}, "not a known needle gauge"),
        ({"target_lps": (0.0, 0.0, 0.5)}, "apart"),
        ({"entry_lps": (float("nan"), 0.0, 0.0)}, "finite"),
    ],
)
def test_invalid_trajectories_refused(kwargs: dict, fragment: str) -> None:
    args = {"level": "L1", "side": "left", "entry_lps": (0, 0, 0), "target_lps": (0, 0, 40)}
    args.update(kwargs)
    with pytest.raises(PlanError, match=fragment):
        Trajectory(**args)


def test_plan_orders_and_refuses_duplicates() -> None:
    plan = _plan()
    assert [t.key for t in plan.trajectories] == [
        ("L1", Side.LEFT),
        ("L1", Side.RIGHT),
        ("L2", Side.RIGHT),
    ]
    assert plan.levels == ("L1", "L2")
    with pytest.raises(PlanError, match="two left trajectories at L1"):
        Plan(trajectories=(plan.trajectories[0], plan.trajectories[0]))
    moved = plan.with_trajectory(plan.trajectories[0].moved(entry_lps=(1, 2, 3)))
    assert moved.get("L1", "left").entry_lps == (1.0, 2.0, 3.0)
    assert plan.get("L1", "left").entry_lps == (31.0, 62.0, 40.0)  # the old value is unchanged
    assert len(plan.without("L1").trajectories) == 1


def test_round_trip_keeps_values_and_unknown_keys(tmp_path: Path) -> None:
    data = plan_to_dict(_plan())
    data["made_by"] = "other tool"
    data["trajectories"][0]["colour"] = "red"
    path = tmp_path / "a.vplan.json"
    path.write_text(json.dumps(data))
    plan = load_plan(path)
    assert plan == _plan()
    save_plan(plan, tmp_path / "b.vplan.json")
    again = json.loads((tmp_path / "b.vplan.json").read_text())
    assert again["made_by"] == "other tool"
    assert again["trajectories"][0]["colour"] == "red"
    assert again["trajectories"][0]["note"] == "fracture"
    assert load_plan(tmp_path / "b.vplan.json") == plan


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d.update(format="other"), "format: must be"),
        (lambda d: d.update(version="1"), "version: must be an integer"),
        (lambda d: d.update(version=7), "version: 7 is newer"),
        (lambda d: d.update(trajectories={}), "trajectories: must be a list"),
        (lambda d: d["trajectories"][1].pop("side"), r"trajectories\[1\]\.side: missing"),
        (lambda d: d["trajectories"][0].update(level="L9"), r"trajectories\[0\]\.level: 'L9'"),
        (lambda d: d["trajectories"][2].update(side="up"), r"trajectories\[2\]\.side:"),
        (lambda d: d["trajectories"][0].update(gauge=11), r"trajectories\[0\]\.gauge: must be"),
        (lambda d: d["trajectories"][0].update(gauge="9G"), r"trajectories\[0\]\.gauge: '9G'"),
        (lambda d: d["trajectories"][0].update(entry_lps=[1, 2]), r"entry_lps: must have 3"),
        (
            lambda d: d["trajectories"][0].update(target_lps=[1, "a", 2]),
            r"trajectories\[0\]\.target_lps\[1\]: must be a number",
        ),
        (
            lambda d: d["trajectories"][0].update(entry_lps=[1, True, 2]),
            r"entry_lps\[1\]: must be a number",
        ),
        (lambda d: d.update(study_uid=5), "study_uid: must be a string"),
        (lambda d: d["trajectories"].append(dict(d["trajectories"][0])), "two left"),
    ],
)
def test_every_validation_error_names_the_key(tmp_path: Path, mutate, fragment: str) -> None:
    data = plan_to_dict(_plan())
    mutate(data)
    path = tmp_path / "bad.vplan.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PlanFormatError, match=fragment) as info:
        load_plan(path)
    assert str(path) in str(info.value)


def test_not_json_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "half.vplan.json"
    path.write_text(json.dumps(plan_to_dict(_plan()))[:60])
    with pytest.raises(PlanFormatError, match=r"is not valid JSON \(line 1, .*not a plan file"):
        load_plan(path)
    with pytest.raises(PlanFormatError, match="does not exist"):
        load_plan(tmp_path / "nope.vplan.json")
    with pytest.raises(PlanFormatError, match="top level"):
        plan_from_dict([1, 2])


def test_atomic_save_survives_a_crash_mid_write(tmp_path: Path) -> None:
    """A process killed while writing leaves the previous file whole."""
    path = tmp_path / "plan.vplan.json"
    save_plan(_plan(), path)
    before = path.read_bytes()
    script = f"""
import os, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})
import planning.interop.plan_file as pf
from planning.plan import Plan
real_fsync = os.fsync
def crash(fd):
    os._exit(9)  # die after the data is written to the temp file, before the rename
os.fsync = crash
pf.save_plan(Plan(study_uid="changed"), {str(path)!r})
"""
    res = subprocess.run([sys.executable, "-c", script], check=False)
    assert res.returncode == 9
    assert path.read_bytes() == before
    assert load_plan(path) == _plan()
    leftovers = [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    assert len(leftovers) == 1  # the half-written temp file, never read as a plan


def test_frame_of_reference_check() -> None:
    plan = _plan()
    assert check_frame(plan, "1.2.3.5") is plan
    with pytest.raises(FrameMismatchError, match="another CT"):
        check_frame(plan, "9.9.9")
    forced = check_frame(plan, "9.9.9", force_other_frame=True)
    assert forced.frame_override is not None
    assert forced.frame_override.ct_frame_uid == "9.9.9"
    assert plan_from_dict(plan_to_dict(forced)).frame_override == forced.frame_override
