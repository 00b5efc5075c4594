"""Reading and writing ``*.vplan.json`` plan files.

The format is deliberately plain so other tools can write plans::

    {"format": "vertebroplan-plan", "version": 1,
     "study_uid": "…", "series_uid": "…", "frame_of_reference_uid": "…",
     "trajectories": [{"level": "L1", "side": "left", "entry_lps": [x, y, z],
                       "target_lps": [x, y, z], "gauge": "11G", "note": ""}]}

Coordinates are DICOM patient LPS millimetres; "side" is the patient's side. Loading checks
everything and names the key path of a wrong value; unknown keys are kept. Saving is atomic:
a crash mid-write leaves the previous file intact.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from planning.errors import VertebroPlanError
from planning.interop.json_files import JsonWording, read_json, short_repr, write_json
from planning.plan import (
    DEFAULT_GAUGE,
    FrameOverride,
    Plan,
    PlanError,
    Point,
    Side,
    Trajectory,
    as_point,
    gauge,
    validate_level,
)

FORMAT = "vertebroplan-plan"
VERSION = 1
SUFFIX = ".vplan.json"
_TOP_KEYS = {
    "format",
    "version",
    "study_uid",
    "series_uid",
    "frame_of_reference_uid",
    "trajectories",
    "frame_override",
}
_TRAJ_KEYS = {"level", "side", "entry_lps", "target_lps", "gauge", "note"}
_JSON_WORDING = JsonWording.of("plan file")


class PlanFormatError(VertebroPlanError, ValueError):
    """A plan file cannot be read: not JSON, wrong format, or a wrong value at a key path."""


class FrameMismatchError(VertebroPlanError, ValueError):
    """The plan was made on a CT with another Frame of Reference."""


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The JSON-ready dictionary of a plan (unknown keys it was read with included)."""
    trajectories = []
    for t in plan.trajectories:
        item: dict[str, Any] = dict(t.extra)
        item.update(
            level=t.level,
            side=t.side.value,
            entry_lps=list(t.entry_lps),
            target_lps=list(t.target_lps),
            gauge=t.gauge,
        )
        if t.note:
            item["note"] = t.note
        trajectories.append(item)
    out: dict[str, Any] = dict(plan.extra)
    out.update(
        format=FORMAT,
        version=VERSION,
        study_uid=plan.study_uid,
        series_uid=plan.series_uid,
        frame_of_reference_uid=plan.frame_of_reference_uid,
        trajectories=trajectories,
    )
    if plan.frame_override is not None:
        fo = plan.frame_override
        out["frame_override"] = {
            "plan_frame_uid": fo.plan_frame_uid,
            "ct_frame_uid": fo.ct_frame_uid,
            "reason": fo.reason,
        }
    return out


def _expect(value: Any, kind: type | tuple[type, ...], path: str, what: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise PlanFormatError(f"{path}: must be {what}, got {type(value).__name__}")
    return value


def _checked(path: str, parse: Any, value: Any) -> Any:
    """Run one field's own validator, prefixing its message with the key path."""
    try:
        return parse(value)
    except PlanError as exc:
        raise PlanFormatError(f"{path}: {exc}") from exc


def _coordinate(value: Any, path: str) -> float:
    """One coordinate in mm: a finite JSON number (an integer too large for a float is
    refused here, where its key path is known)."""
    _expect(value, (int, float), path, "a number (mm)")
    try:
        x = float(value)
    except OverflowError as exc:
        raise PlanFormatError(f"{path}: {short_repr(value)} is too large a number (mm)") from exc
    if not math.isfinite(x):
        raise PlanFormatError(f"{path}: must be a finite number (mm), got {x}")
    _checked(path, lambda c: as_point([c, 0, 0]), x)
    return x


def _trajectory(item: Any, path: str) -> Trajectory:
    _expect(item, dict, path, "an object")
    for key in ("level", "side", "entry_lps", "target_lps"):
        if key not in item:
            raise PlanFormatError(f"{path}.{key}: missing")
    for key in ("level", "side"):
        _expect(item[key], str, f"{path}.{key}", "a string")
    points: dict[str, Point] = {}
    for key in ("entry_lps", "target_lps"):
        v = _expect(item[key], list, f"{path}.{key}", "a list [x, y, z] in mm")
        if len(v) != 3:
            raise PlanFormatError(f"{path}.{key}: must have 3 numbers, has {len(v)}")
        x, y, z = (_coordinate(c, f"{path}.{key}[{n}]") for n, c in enumerate(v))
        points[key] = (x, y, z)
    g = _expect(item.get("gauge", DEFAULT_GAUGE), str, f"{path}.gauge", 'a string such as "11G"')
    note = _expect(item.get("note", ""), str, f"{path}.note", "a string")
    level = _checked(f"{path}.level", validate_level, item["level"])
    side = _checked(f"{path}.side", Side.parse, item["side"])
    g = _checked(f"{path}.gauge", lambda x: gauge(x).name, g)
    extra = tuple((k, v) for k, v in item.items() if k not in _TRAJ_KEYS)
    return _checked(
        path,
        lambda _: Trajectory(level, side, points["entry_lps"], points["target_lps"], g, note,
                             extra),
        None,
    )


def plan_from_dict(data: Any) -> Plan:
    """Validate a parsed plan file and build the `Plan` (raises `PlanFormatError`)."""
    _expect(data, dict, "(top level)", "a JSON object")
    if data.get("format") != FORMAT:
        raise PlanFormatError(f'format: must be "{FORMAT}", got {short_repr(data.get("format"))}')
    version = data.get("version")
    _expect(version, int, "version", "an integer")
    if version > VERSION:
        raise PlanFormatError(
            f"version: {version} is newer than this VertebroPlan reads ({VERSION}); update it"
        )
    if version < 1:
        raise PlanFormatError(f"version: must be 1 or more, got {version}")
    for key in ("study_uid", "series_uid", "frame_of_reference_uid"):
        _expect(data.get(key, ""), str, key, "a string (a DICOM UID)")
    items = _expect(data.get("trajectories", []), list, "trajectories", "a list")
    trajectories = [_trajectory(it, f"trajectories[{n}]") for n, it in enumerate(items)]
    override = None
    if data.get("frame_override") is not None:
        fo = _expect(data["frame_override"], dict, "frame_override", "an object")
        texts = {
            key: _expect(fo.get(key, default), str, f"frame_override.{key}", "a string")
            for key, default in (("plan_frame_uid", ""), ("ct_frame_uid", ""),
                                 ("reason", "explicit override"))
        }
        override = FrameOverride(**texts)
    try:
        return Plan(
            study_uid=data.get("study_uid", ""),
            series_uid=data.get("series_uid", ""),
            frame_of_reference_uid=data.get("frame_of_reference_uid", ""),
            trajectories=tuple(trajectories),
            frame_override=override,
            extra=tuple((k, v) for k, v in data.items() if k not in _TOP_KEYS),
        )
    except PlanError as exc:
        raise PlanFormatError(f"trajectories: {exc}") from exc


def load_plan(path: str | Path) -> Plan:
    """Read and validate a ``.vplan.json`` file; errors name the file and the key path."""
    p = Path(path)
    data = read_json(p, PlanFormatError, _JSON_WORDING)
    try:
        return plan_from_dict(data)
    except PlanFormatError as exc:
        raise PlanFormatError(f"'{p}': {exc}") from exc


def save_plan(plan: Plan, path: str | Path) -> Path:
    """Write atomically: temp file in the same folder, fsync, rename over the target."""
    p = Path(path)
    write_json(p, plan_to_dict(plan))
    return p


def check_frame(plan: Plan, ct_frame_uid: str, *, force_other_frame: bool = False) -> Plan:
    """Refuse a plan made on another CT unless explicitly overridden (and record that)."""
    if not plan.frame_of_reference_uid or plan.frame_of_reference_uid == ct_frame_uid:
        return plan
    if not force_other_frame:
        raise FrameMismatchError(
            "The plan was made on another CT (Frame of Reference "
            f"{plan.frame_of_reference_uid}, this CT has {ct_frame_uid}): its coordinates do "
            "not apply here. Override only if the two CTs are registered to the same frame."
        )
    return replace(plan, frame_override=FrameOverride(plan.frame_of_reference_uid, ct_frame_uid))
