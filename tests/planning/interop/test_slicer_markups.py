"""3D Slicer markups (.mrk.json): round trip, Slicer-made files (RAS, point lists, names),
schema validity and the error messages a user sees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from planning.interop.slicer_markups import (
    SCHEMA_URL,
    MarkupsError,
    plan_to_markups,
    read_markups,
    write_markups,
)
from planning.plan import Plan, Side, Trajectory

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "data" / "markups-schema-v1.0.3.json"
FRAME = "1.2.826.0.1.3680043.8.498.12345"


def _plan() -> Plan:
    return Plan(
        frame_of_reference_uid=FRAME,
        trajectories=(
            Trajectory("L1", Side.LEFT, (45.123456789, 60.5, -120.25), (12.0, 20.0, -118.0), "11G"),
            Trajectory("L1", Side.RIGHT, (-44.9, 61.0, -121.0), (-11.5, 19.75, -117.5), "13G"),
            Trajectory("T12", Side.RIGHT, (-40.0, 55.0, -90.0), (-10.0, 15.0, -91.0), "10G"),
        ),
    )


def _validate(data: Any) -> None:
    """Validate against Slicer's markups schema v1.0.3 (a verbatim copy in tests/data)."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(data)


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def _line(name: str, p0: list[float], p1: list[float], **markup: Any) -> dict[str, Any]:
    """A Line markup as Slicer writes it (its own default labels "<name>-1", "<name>-2")."""
    out: dict[str, Any] = {
        "type": "Line",
        "coordinateSystem": "RAS",
        "coordinateUnits": "mm",
        "locked": False,
        "labelFormat": "%N-%d",
        "controlPoints": [
            {"id": "1", "label": f"{name}-1", "description": "", "position": p0,
             "positionStatus": "defined"},
            {"id": "2", "label": f"{name}-2", "description": "", "position": p1,
             "positionStatus": "defined"},
        ],
        "measurements": [],
        "display": {"color": [0.4, 1.0, 1.0]},
    }
    if name:
        out["name"] = name
    out.update(markup)
    return out


def _doc(*markups: dict[str, Any]) -> dict[str, Any]:
    return {"@schema": SCHEMA_URL, "markups": list(markups)}


# ----------------------------------------------------------------------------- round trip


def test_round_trip_keeps_every_trajectory(tmp_path: Path) -> None:
    plan = _plan()
    path = write_markups(tmp_path / "plan.mrk.json", plan)
    back = read_markups(path)
    assert back.frame_of_reference_uid == FRAME
    assert [t.key for t in back.trajectories] == [t.key for t in plan.trajectories]
    for a, b in zip(plan.trajectories, back.trajectories, strict=True):
        np.testing.assert_allclose(b.entry, a.entry, atol=1e-6)
        np.testing.assert_allclose(b.target, a.target, atol=1e-6)
        assert b.gauge == a.gauge
    assert [p.name for p in tmp_path.iterdir()] == ["plan.mrk.json"]  # no temp file left


def test_written_file_is_valid_slicer_markups(tmp_path: Path) -> None:
    path = write_markups(tmp_path / "plan.mrk.json", _plan())
    data = json.loads(path.read_text(encoding="utf-8"))
    _validate(data)
    assert data["@schema"] == SCHEMA_URL
    first = data["markups"][0]
    assert first["type"] == "Line"
    assert first["coordinateSystem"] == "LPS"
    assert first["coordinateUnits"] == "mm"
    assert first["name"] == "T12 right"  # cranial first
    assert [cp["label"] for cp in first["controlPoints"]] == ["T12-R entry", "T12-R tip"]
    assert first["controlPoints"][0]["position"] == [-40.0, 55.0, -90.0]  # LPS, unchanged
    assert "level=T12; side=right; gauge=10G" in first["description"]
    colours = {m["name"]: m["display"]["color"] for m in data["markups"]}
    assert colours["L1 left"] != colours["L1 right"]


def test_file_resaved_by_slicer_still_reads(tmp_path: Path) -> None:
    """Slicer drops a markup's name and description when it saves; the control points'
    labels and descriptions carry level, side and gauge through."""
    data = plan_to_markups(_plan())
    for m in data["markups"]:
        del m["name"], m["description"]
    back = read_markups(_write(tmp_path / "resaved.mrk.json", data))
    assert back == _plan()


# ----------------------------------------------------------------------------- Slicer RAS


def test_ras_line_is_converted_to_lps(tmp_path: Path) -> None:
    # RAS: +x = patient's right, +y = anterior. A point 40 mm to the patient's LEFT and
    # 60 mm POSTERIOR of the origin is RAS (-40, -60, z) and LPS (+40, +60, z).
    data = _doc(_line("L2 left", [-40.0, -60.0, -150.0], [-12.5, -22.0, -148.0]))
    _validate(data)
    plan = read_markups(_write(tmp_path / "slicer.mrk.json", data))
    (t,) = plan.trajectories
    assert t.key == ("L2", Side.LEFT)
    assert t.entry_lps == (40.0, 60.0, -150.0)
    assert t.target_lps == (12.5, 22.0, -148.0)
    assert t.gauge == "11G"  # the default gauge


def test_left_stays_left_after_a_ras_read(tmp_path: Path) -> None:
    data = _doc(
        _line("L3 left", [-45.0, -70.0, -160.0], [-10.0, -30.0, -160.0]),
        _line("L3 right", [45.0, -70.0, -160.0], [10.0, -30.0, -160.0]),
    )
    plan = read_markups(_write(tmp_path / "both.mrk.json", data))
    left, right = plan.get("L3", "left"), plan.get("L3", "right")
    assert left is not None and right is not None
    assert left.entry_lps[0] > right.entry_lps[0]
    assert left.entry_lps[0] > 0  # LPS +x is the patient's left


def test_missing_coordinate_system_means_lps_as_in_slicer(tmp_path: Path) -> None:
    line = _line("L4 right", [-40.0, 60.0, -170.0], [-10.0, 20.0, -170.0])
    del line["coordinateSystem"]
    plan = read_markups(_write(tmp_path / "nosystem.mrk.json", _doc(line)))
    assert plan.trajectories[0].entry_lps == (-40.0, 60.0, -170.0)


def test_units_as_ucum_code_are_accepted(tmp_path: Path) -> None:
    line = _line("L4 right", [40.0, -60.0, -170.0], [10.0, -20.0, -170.0],
                 coordinateUnits=["mm", "UCUM", "millimeter"])
    _validate(_doc(line))
    plan = read_markups(_write(tmp_path / "ucum.mrk.json", _doc(line)))
    assert plan.trajectories[0].entry_lps == (-40.0, 60.0, -170.0)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("L1 left", ("L1", Side.LEFT)),
        ("L1 L", ("L1", Side.LEFT)),
        ("L1_R", ("L1", Side.RIGHT)),
        ("left L2", ("L2", Side.LEFT)),
        ("Right T12 pedicle", ("T12", Side.RIGHT)),
        ("l5r", ("L5", Side.RIGHT)),
        ("S1-L 13G", ("S1", Side.LEFT)),
    ],
)
def test_level_and_side_from_names(tmp_path: Path, name: str, key: tuple[str, Side]) -> None:
    line = _line(name, [-40.0, -60.0, -150.0], [-12.0, -22.0, -148.0])
    (t,) = read_markups(_write(tmp_path / "named.mrk.json", _doc(line))).trajectories
    assert t.key == key
    assert t.gauge == ("13G" if "13G" in name else "11G")


def test_file_name_names_a_single_markup(tmp_path: Path) -> None:
    """A file Slicer saved is named after its node, and the node's name is not inside."""
    line = _line("", [-40.0, -60.0, -150.0], [-12.0, -22.0, -148.0])
    for cp in line["controlPoints"]:
        cp["label"] = f"F-{cp['id']}"
    plan = read_markups(_write(tmp_path / "L4 right.mrk.json", _doc(line)))
    assert plan.trajectories[0].key == ("L4", Side.RIGHT)


def test_frame_argument_is_used_when_the_file_has_none(tmp_path: Path) -> None:
    line = _line("L2 left", [-40.0, -60.0, -150.0], [-12.0, -22.0, -148.0])
    plan = read_markups(_write(tmp_path / "a.mrk.json", _doc(line)),
                        frame_of_reference_uid="1.2.3", default_gauge="15G")
    assert plan.frame_of_reference_uid == "1.2.3"
    assert plan.trajectories[0].gauge == "15G"


# ----------------------------------------------------------------------------- point lists


def _fiducial(points: list[tuple[str, list[float]]], name: str = "F") -> dict[str, Any]:
    return {
        "type": "Fiducial",
        "name": name,
        "coordinateSystem": "LPS",
        "controlPoints": [
            {"id": str(n + 1), "label": label, "position": pos}
            for n, (label, pos) in enumerate(points)
        ],
    }


def test_point_list_with_labelled_pairs_in_any_order(tmp_path: Path) -> None:
    data = _doc(_fiducial([
        ("L1 L tip", [12.0, 20.0, -118.0]),
        ("L1 R entry", [-45.0, 61.0, -121.0]),
        ("L1 L entry", [45.0, 60.0, -120.0]),
        ("L1 R tip", [-11.0, 19.0, -117.0]),
    ]))
    _validate(data)
    plan = read_markups(_write(tmp_path / "points.mrk.json", data))
    left, right = plan.get("L1", "left"), plan.get("L1", "right")
    assert left is not None and right is not None
    assert left.entry_lps == (45.0, 60.0, -120.0) and left.target_lps == (12.0, 20.0, -118.0)
    assert right.entry_lps == (-45.0, 61.0, -121.0) and right.target_lps == (-11.0, 19.0, -117.0)


def test_point_list_with_consecutive_pairs(tmp_path: Path) -> None:
    data = _doc(_fiducial([
        ("T11 L", [40.0, 50.0, -80.0]),
        ("T11 L", [10.0, 12.0, -80.0]),
        ("T11_R", [-40.0, 50.0, -80.0]),
        ("T11_R", [-10.0, 12.0, -80.0]),
    ]))
    plan = read_markups(_write(tmp_path / "pairs.mrk.json", data))
    t = plan.get("T11", "right")
    assert t is not None
    assert t.entry_lps == (-40.0, 50.0, -80.0) and t.target_lps == (-10.0, 12.0, -80.0)


def test_single_unlabelled_pair_takes_the_list_name(tmp_path: Path) -> None:
    data = _doc(_fiducial([("F-1", [40.0, 50.0, -80.0]), ("F-2", [10.0, 12.0, -80.0])],
                          name="L1 left"))
    plan = read_markups(_write(tmp_path / "one.mrk.json", data))
    assert plan.trajectories[0].key == ("L1", Side.LEFT)


# ----------------------------------------------------------------------------- errors


def _error(tmp_path: Path, data: Any, name: str = "bad.mrk.json") -> str:
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        _write(path, data)
    with pytest.raises(MarkupsError) as info:
        read_markups(path)
    message = str(info.value)
    assert str(path) in message  # every message names the file
    return message


def test_error_bad_json(tmp_path: Path) -> None:
    assert "not valid JSON" in _error(tmp_path, '{"markups": [')


def test_error_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MarkupsError, match="does not exist"):
        read_markups(tmp_path / "nothing.mrk.json")


def test_error_not_a_markups_file(tmp_path: Path) -> None:
    assert "has no 'markups' list" in _error(tmp_path, {"format": "vertebroplan-plan"})
    assert "top level is a list" in _error(tmp_path, [1, 2])
    assert "contains no markups" in _error(tmp_path, _doc())
    assert "not a Slicer markups schema v1" in _error(
        tmp_path, {"@schema": "https://example.org/markups-schema-v2.0.0.json#", "markups": []}
    )


def test_error_wrong_types(tmp_path: Path) -> None:
    line = _line("L1 left", [-40.0, -60.0, -150.0], [-12.0, -22.0, -148.0])
    line["controlPoints"][1]["position"] = "12, 22, 148"
    assert "control point 2 ('L1 left-2'): position must be three finite numbers" in _error(
        tmp_path, _doc(line)
    )
    line["controlPoints"] = {"1": [0, 0, 0]}
    assert "'controlPoints' must be a list, got dict" in _error(tmp_path, _doc(line))
    not_an_object: Any = "L1 left"
    assert "markup 1 is a str, not an object" in _error(tmp_path, _doc(not_an_object))
    line = _line("L1 left", [-40.0, -60.0, -150.0], [-12.0, -22.0, -148.0])
    line["name"] = 7
    assert "'name' must be text, got int" in _error(tmp_path, _doc(line))


def test_error_units_and_coordinate_systems(tmp_path: Path) -> None:
    line = _line("L1 left", [-40.0, -60.0, -150.0], [-12.0, -22.0, -148.0],
                 coordinateUnits="um")
    msg = _error(tmp_path, _doc(line))
    assert "markup 1 ('L1 left')" in msg and "only millimetres" in msg
    line = _line("L1 left", [-40.0, -60.0, -150.0], [-12.0, -22.0, -148.0],
                 coordinateSystem="IJK")
    assert "coordinate system 'IJK' is not supported" in _error(tmp_path, _doc(line))


def test_error_markup_without_level_or_side(tmp_path: Path) -> None:
    line = _line("Line_1", [-40.0, -60.0, -150.0], [-12.0, -22.0, -148.0])
    msg = _error(tmp_path, _doc(line, _line("L1 left", [1.0, 2, 3], [20.0, 2, 3])))
    assert "markup 1 ('Line_1'): cannot tell its level and side" in msg


def test_error_two_markups_for_one_level_and_side(tmp_path: Path) -> None:
    data = _doc(
        _line("L1 left", [-40.0, -60.0, -150.0], [-12.0, -22.0, -148.0]),
        _line("L1 L", [-41.0, -60.0, -150.0], [-12.0, -22.0, -148.0]),
    )
    msg = _error(tmp_path, data)
    assert "two markups for L1 left" in msg
    assert "markup 1 ('L1 left')" in msg and "markup 2 ('L1 L')" in msg


def test_error_names_that_disagree(tmp_path: Path) -> None:
    line = _line("L2 left", [-40.0, -60.0, -150.0], [-12.0, -22.0, -148.0],
                 description="VertebroPlan trajectory; level=L1; side=left; gauge=11G")
    assert "names disagree about level and side" in _error(tmp_path, _doc(line))


def test_error_wrong_number_of_points_and_unsupported_types(tmp_path: Path) -> None:
    line = _line("L1 left", [-40.0, -60.0, -150.0], [-12.0, -22.0, -148.0])
    line["controlPoints"].append({"label": "x", "position": [0.0, 0.0, 0.0]})
    assert "needs 2 control points (entry, tip), it has 3" in _error(tmp_path, _doc(line))
    angle = {"type": "Angle", "name": "A", "controlPoints": []}
    assert "is a 'Angle' markup" in _error(tmp_path, _doc(angle))
    odd = _fiducial([("a", [0.0, 0, 0]), ("b", [10.0, 0, 0]), ("c", [20.0, 0, 0])])
    assert "has 3 points; trajectories need pairs" in _error(tmp_path, _doc(odd))


def test_error_unplaced_point_and_too_short_needle(tmp_path: Path) -> None:
    line = _line("L1 left", [-40.0, -60.0, -150.0], [-12.0, -22.0, -148.0])
    line["controlPoints"][0].update(position="", positionStatus="undefined")
    assert "has no position (it was never placed)" in _error(tmp_path, _doc(line))
    line = _line("L1 left", [-40.0, -60.0, -150.0], [-40.1, -60.0, -150.0])
    assert "entry and target are 0.10 mm apart" in _error(tmp_path, _doc(line))
