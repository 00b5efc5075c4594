"""Trajectories as 3D Slicer markups (``.mrk.json``), both ways.

Why: 3D Slicer is where most research groups look at, measure and register CT data; a plan
exported as markups opens there on the same CT, and lines drawn there come back as a plan.

The file follows Slicer's markups schema v1.0.3: one ``"Line"`` markup per trajectory with
two control points, entry then tip, in ``"LPS"`` millimetres — the DICOM patient frame that
VertebroPlan uses throughout, so positions are written unchanged. Slicer loads every markup
of such a file as its own line node.

Where level, side and gauge are stored, and why in several places: Slicer reads but never
writes a markup's ``name`` (nor a markup-level ``description``), so after the user saves a
line in Slicer only the control points' ``label`` and ``description`` and the file name
survive. We therefore write the machine-readable text
``"VertebroPlan trajectory; level=L1; side=left; gauge=11G"`` on the markup and on each
control point, and labels such as ``"L1-L entry"`` / ``"L1-L tip"``
(`planning.interop.markup_names` writes and parses these texts).

Reading accepts Line markups (ours, or drawn in Slicer and named like "L1 left", "L1 L",
"L1_R", "left L2") and point lists (``"Fiducial"``) holding entry/tip pairs. The side is
always the patient's side; RAS files are converted to LPS by negating x and y, so a left
trajectory stays on the patient's left (+x in LPS).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, TypeAlias

from planning.errors import VertebroPlanError
from planning.interop.json_files import JsonWording, read_json, short_repr, write_json
from planning.interop.markup_names import (
    TrajectoryNames,
    describe,
    parse_keyvalues,
    parse_text,
    parse_words,
)
from planning.plan import (
    DEFAULT_GAUGE,
    Plan,
    PlanError,
    Point,
    Side,
    Trajectory,
    gauge,
)

SCHEMA_URL = (
    "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/"
    "Resources/Schema/markups-schema-v1.0.3.json#"
)
"""The ``@schema`` value Slicer itself writes (it keeps "master" in it for compatibility)."""

SUFFIX = ".mrk.json"

SIDE_COLOURS: dict[Side, tuple[float, float, float]] = {
    Side.LEFT: (0.20, 0.55, 1.00),  # blue
    Side.RIGHT: (1.00, 0.60, 0.10),  # orange
}
"""Line colour per patient side, so left and right cannot be confused at a glance."""

_SCHEMA_RE = re.compile(r"markups-schema-v(\d+)\.\d+\.\d+\.json#*$", re.IGNORECASE)
_JSON_WORDING = JsonWording.of("markups file")


class MarkupsError(VertebroPlanError, ValueError):
    """A markups file cannot be read as trajectories (names the file and the markup)."""


def _finite_number(value: Any) -> bool:
    """A JSON number that is a finite float (an integer too large for a float is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


# ----------------------------------------------------------------------------- writing


def _control_point(n: int, label: str, description: str, position_lps: Point) -> dict[str, Any]:
    return {
        "id": str(n),
        "label": label,
        "description": description,
        "associatedNodeID": "",
        "position": list(position_lps),
        "selected": True,
        "locked": False,
        "visibility": True,
        "positionStatus": "defined",
    }


def _line_markup(t: Trajectory, frame_of_reference_uid: str) -> dict[str, Any]:
    description = describe(t, frame_of_reference_uid)
    tag = f"{t.level}-{t.side.letter}"
    colour = list(SIDE_COLOURS[t.side])
    return {
        "type": "Line",
        "name": f"{t.level} {t.side.value}",
        "description": description,
        "coordinateSystem": "LPS",
        "coordinateUnits": "mm",
        "locked": False,
        "fixedNumberOfControlPoints": False,
        "labelFormat": "%N-%d",
        "lastUsedControlPointNumber": 2,
        "controlPoints": [
            _control_point(1, f"{tag} entry", f"{description}; point=entry", t.entry_lps),
            _control_point(2, f"{tag} tip", f"{description}; point=tip", t.target_lps),
        ],
        "measurements": [],
        "display": {
            "visibility": True,
            "opacity": 1.0,
            "color": colour,
            "selectedColor": colour,  # Slicer draws selected points (the default) in this one
            "activeColor": [0.4, 1.0, 0.0],
            "propertiesLabelVisibility": True,
            "pointLabelsVisibility": True,
            "textScale": 3.0,
            "glyphType": "Sphere3D",
            "glyphScale": 1.5,
            "glyphSize": 5.0,
            "useGlyphScale": True,
            "lineThickness": 0.2,
        },
    }


def plan_to_markups(plan: Plan) -> dict[str, Any]:
    """The JSON-ready markups document of a plan: one LPS ``Line`` per trajectory."""
    return {
        "@schema": SCHEMA_URL,
        "markups": [_line_markup(t, plan.frame_of_reference_uid) for t in plan.trajectories],
    }


def write_markups(path: str | Path, plan: Plan) -> Path:
    """Write ``plan`` as a Slicer ``.mrk.json`` file, atomically; returns the path.

    Atomic (temp file in the same folder, fsync, rename) so that a crash or a full disk
    never leaves a half-written file that Slicer would half-load.
    """
    p = Path(path)
    write_json(p, plan_to_markups(plan))
    return p


# ----------------------------------------------------------------------------- reading


_Sources: TypeAlias = list[tuple[str, TrajectoryNames]]
"""What names a markup's level, side and gauge: (what a message calls it, what it says)."""
_Found: TypeAlias = list[tuple[str, Trajectory]]
"""Trajectories read, each with where it was read (for messages)."""


class _Reader:
    """Reads one parsed markups document; every error names the file (and the markup)."""

    def __init__(self, source: str, default_gauge: str) -> None:
        self.source = source
        self.default_gauge = default_gauge

    def fail(self, message: str) -> MarkupsError:
        return MarkupsError(f"'{self.source}': {message}")

    # -- structure -------------------------------------------------------------------

    def markups(self, data: Any) -> list[dict[str, Any]]:
        if not isinstance(data, dict):
            raise self.fail(f"is not a Slicer markups file (top level is a "
                            f"{type(data).__name__}, not an object)")
        schema = data.get("@schema")
        if schema is not None:
            m = _SCHEMA_RE.search(str(schema)) if isinstance(schema, str) else None
            if m is None or m.group(1) != "1":
                raise self.fail(f"@schema {short_repr(schema)} is not a Slicer markups schema v1.x "
                                "(this version reads markups-schema-v1.*.json)")
        items = data.get("markups")
        if not isinstance(items, list):
            raise self.fail("has no 'markups' list; is it a Slicer markups file (.mrk.json)?")
        if not items:
            raise self.fail("contains no markups")
        for n, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.fail(f"markup {n + 1} is a {type(item).__name__}, not an object")
        return items

    def where(self, n: int, markup: dict[str, Any]) -> str:
        name = markup.get("name")
        return f"markup {n + 1}" + (f" ('{name}')" if isinstance(name, str) and name else "")

    def text(self, obj: dict[str, Any], key: str, where: str) -> str:
        value = obj.get(key, "")
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.fail(f"{where}: '{key}' must be text, got {type(value).__name__}")
        return value

    def sign_xy(self, markup: dict[str, Any], where: str) -> float:
        """+1 for LPS, −1 for RAS (x and y negated to reach LPS).

        A missing ``coordinateSystem`` means LPS: that is what Slicer's own JSON reader
        assumes (``vtkMRMLMarkupsJsonStorageNode``) and the schema's default. (RAS was the
        default of Slicer's older ``.fcsv`` files, which this reader does not take.)
        """
        system = markup.get("coordinateSystem", "LPS")
        if not isinstance(system, str):
            raise self.fail(f"{where}: coordinateSystem must be text, "
                            f"got {type(system).__name__}")
        s = system.strip().upper()
        if s == "LPS":
            return 1.0
        if s == "RAS":
            return -1.0
        raise self.fail(f"{where}: coordinate system {short_repr(system)} is not supported "
                        "(only LPS or RAS patient coordinates)")

    def check_units(self, markup: dict[str, Any], where: str) -> None:
        units = markup.get("coordinateUnits", "mm")
        if isinstance(units, list) and len(units) == 3 and all(isinstance(u, str) for u in units):
            value, scheme = units[0], units[1]
            if scheme.upper() != "UCUM":
                raise self.fail(f"{where}: coordinate units coded in {short_repr(scheme)}; "
                                "only UCUM codes are understood")
            units = value
        if not isinstance(units, str):
            raise self.fail(f"{where}: coordinateUnits must be text such as \"mm\", "
                            f"got {type(units).__name__}")
        if units.strip() != "mm":
            raise self.fail(f"{where}: coordinates are in {short_repr(units)}; only millimetres "
                            "(\"mm\") are accepted")

    def points(
        self, markup: dict[str, Any], where: str
    ) -> list[tuple[str, TrajectoryNames, Point]]:
        """(label, what its label and description say, LPS position) per control point,
        after checking the markup's coordinate system and units."""
        sign_xy = self.sign_xy(markup, where)
        self.check_units(markup, where)
        cps = markup.get("controlPoints", [])
        if not isinstance(cps, list):
            raise self.fail(f"{where}: 'controlPoints' must be a list, "
                            f"got {type(cps).__name__}")
        out = []
        for k, cp in enumerate(cps):
            if not isinstance(cp, dict):
                raise self.fail(f"{where}: control point {k + 1} is a "
                                f"{type(cp).__name__}, not an object")
            label = self.text(cp, "label", f"{where}, control point {k + 1}")
            at = f"{where}, control point {k + 1}" + (f" ('{label}')" if label else "")
            status = cp.get("positionStatus", "defined")
            pos = cp.get("position")
            if status != "defined" or pos is None or pos == "":
                raise self.fail(f"{at}: has no position (it was never placed)")
            if not isinstance(pos, list) or len(pos) != 3 or not all(map(_finite_number, pos)):
                raise self.fail(f"{at}: position must be three finite numbers [x, y, z] "
                                f"in mm, got {short_repr(pos)}")
            lps = (sign_xy * float(pos[0]), sign_xy * float(pos[1]), float(pos[2]))
            description = self.text(cp, "description", at)
            own = parse_keyvalues(description)
            names = own if own is not None else parse_words(f"{label} {description}")
            out.append((label or f"point {k + 1}", names, lps))
        return out

    # -- level and side --------------------------------------------------------------

    def key_from(self, sources: _Sources,
                 where: str) -> tuple[tuple[str, Side], str | None, str | None]:
        """(level, side), gauge and frame UID agreed by every source that names both.

        Why refuse disagreement rather than pick one: a markup whose description says L1
        but whose name says L2 was probably edited by hand, and guessing could put a
        needle at the wrong level.
        """
        keys = {names.key: what for what, names in sources if names.key is not None}
        if not keys:
            raise self.fail(
                f"{where}: cannot tell its level and side; name it like \"L1 left\", "
                "\"L1 L\" or \"L1_R\" (level C1–S1, the patient's left or right)"
            )
        if len(keys) > 1:
            said = "; ".join(f"{what} says {lv} {sd.value}" for (lv, sd), what in keys.items())
            raise self.fail(f"{where}: names disagree about level and side ({said})")
        gauges = set()
        for what, names in sources:
            if names.gauge:
                try:
                    gauges.add(gauge(names.gauge).name)
                except PlanError as exc:
                    raise self.fail(f"{where}: {what}: {exc}") from exc
        if len(gauges) > 1:
            listed = ", ".join(sorted(gauges))
            raise self.fail(f"{where}: names disagree about the gauge ({listed})")
        frames = {names.frame_uid for _, names in sources if names.frame_uid}
        if len(frames) > 1:
            raise self.fail(f"{where}: control points name different frames of reference")
        return (
            next(iter(keys)),
            gauges.pop() if gauges else None,
            frames.pop() if frames else None,
        )

    def trajectory(
        self,
        where: str,
        key: tuple[str, Side],
        gauge_name: str | None,
        entry: Point,
        tip: Point,
    ) -> Trajectory:
        try:
            g = gauge(gauge_name or self.default_gauge).name
        except PlanError as exc:
            raise self.fail(f"{where}: {exc}") from exc
        try:
            return Trajectory(key[0], key[1], entry, tip, g)
        except PlanError as exc:
            raise self.fail(f"{where}: {exc}") from exc

    # -- markup types ----------------------------------------------------------------

    def line(self, markup: dict[str, Any], where: str,
             extra_sources: _Sources) -> tuple[_Found, set[str]]:
        pts = self.points(markup, where)
        if len(pts) != 2:
            raise self.fail(f"{where}: a trajectory line needs 2 control points "
                            f"(entry, tip), it has {len(pts)}")
        (label0, names0, p0), (label1, names1, p1) = pts
        entry, tip = p0, p1
        if names0.role == "tip" and names1.role == "entry":
            entry, tip = p1, p0  # labelled the other way round: the labels win
        sources = [
            *extra_sources,
            (f"control point '{label0}'", names0),
            (f"control point '{label1}'", names1),
        ]
        key, g, frame = self.key_from(sources, where)
        frames = {frame} if frame else set()
        return [(where, self.trajectory(where, key, g, entry, tip))], frames

    def point_list(self, markup: dict[str, Any], where: str,
                   extra_sources: _Sources) -> tuple[_Found, set[str]]:
        """Entry/tip pairs: grouped by their labels when every point names level, side and
        role; otherwise consecutive points, entry then tip."""
        pts = self.points(markup, where)
        if not pts:
            raise self.fail(f"{where}: the point list is empty")
        out: _Found = []
        frames: set[str] = set()
        if all(n.key is not None and n.role is not None for _, n, _ in pts):
            groups: dict[tuple[str, Side], dict[str, tuple[str, TrajectoryNames, Point]]] = {}
            for label, names, pos in pts:
                assert names.key is not None and names.role is not None
                group = groups.setdefault(names.key, {})
                if names.role in group:
                    raise self.fail(f"{where}: two {names.role} points for "
                                    f"{names.key[0]} {names.key[1].value} "
                                    f"('{group[names.role][0]}' and '{label}')")
                group[names.role] = (label, names, pos)
            for (level, side), group in groups.items():
                at = f"{where}, {level} {side.value}"
                missing = {"entry", "tip"} - set(group)
                if missing:
                    raise self.fail(f"{at}: has no {missing.pop()} point")
                (le, ne, pe), (lt, nt, pt) = group["entry"], group["tip"]
                key, g, frame = self.key_from(
                    [(f"control point '{le}'", ne), (f"control point '{lt}'", nt)], at
                )
                frames |= {frame} if frame else set()
                out.append((at, self.trajectory(at, key, g, pe, pt)))
            return out, frames
        if len(pts) % 2:
            raise self.fail(f"{where}: has {len(pts)} points; trajectories need pairs "
                            "(entry, then tip), labelled like \"L1 L entry\" / \"L1 L tip\"")
        for k in range(0, len(pts), 2):
            (la, na, pa), (lb, nb, pb) = pts[k], pts[k + 1]
            at = f"{where}, points {k + 1}–{k + 2} ('{la}', '{lb}')"
            sources = [(f"control point '{la}'", na), (f"control point '{lb}'", nb)]
            if len(pts) == 2:  # one pair: the list's own name may say where it goes
                sources = [*extra_sources, *sources]
            entry, tip = (pb, pa) if (na.role == "tip" and nb.role == "entry") else (pa, pb)
            key, g, frame = self.key_from(sources, at)
            frames |= {frame} if frame else set()
            out.append((at, self.trajectory(at, key, g, entry, tip)))
        return out, frames

    def read(self, data: Any, file_stem: str | None) -> tuple[list[Trajectory], set[str]]:
        items = self.markups(data)
        found: _Found = []
        frames: set[str] = set()
        for n, markup in enumerate(items):
            where = self.where(n, markup)
            kind = markup.get("type")
            sources: _Sources = []
            name = self.text(markup, "name", where)
            description = self.text(markup, "description", where)
            if description:
                sources.append(("its description", parse_text(description)))
            if name:
                sources.append(("its name", parse_text(name)))
            if file_stem and len(items) == 1:
                # Slicer does not save a markup's name: a file it saved is named after it
                sources.append(("the file name", parse_words(file_stem)))
            if kind == "Line":
                got, fr = self.line(markup, where, sources)
            elif kind == "Fiducial":
                got, fr = self.point_list(markup, where, sources)
            else:
                raise self.fail(f"{where}: is a {short_repr(kind)} markup; only Line markups and "
                                "point lists (Fiducial) can be read as trajectories")
            found += got
            frames |= fr
        seen: dict[tuple[str, Side], str] = {}
        for where, t in found:
            if t.key in seen:
                raise self.fail(f"two markups for {t.level} {t.side.value}: "
                                f"{seen[t.key]} and {where}")
            seen[t.key] = where
        return [t for _, t in found], frames


def plan_from_markups(
    data: Any,
    *,
    source: str = "(markups)",
    frame_of_reference_uid: str = "",
    default_gauge: str = DEFAULT_GAUGE,
    file_stem: str | None = None,
) -> Plan:
    """Build a `Plan` from a parsed markups document (see `read_markups`)."""
    reader = _Reader(source, default_gauge)
    trajectories, frames = reader.read(data, file_stem)
    if len(frames) > 1:
        raise reader.fail("its trajectories name different frames of reference "
                          f"({', '.join(sorted(frames))})")
    frame = frames.pop() if frames else frame_of_reference_uid
    return Plan(frame_of_reference_uid=frame, trajectories=tuple(trajectories))


def read_markups(
    path: str | Path,
    *,
    frame_of_reference_uid: str = "",
    default_gauge: str = DEFAULT_GAUGE,
) -> Plan:
    """Read trajectories from a Slicer markups file; returns a `Plan` in LPS mm.

    Parameters
    ----------
    path
        A ``.mrk.json`` file: written by `write_markups`, or by 3D Slicer.
    frame_of_reference_uid
        The frame the coordinates are assumed to be in when the file does not say (files
        saved by Slicer never do). A frame recorded by VertebroPlan in the file wins, so
        that `planning.interop.plan_file.check_frame` can still catch a plan made on another CT.
    default_gauge
        Needle gauge for trajectories whose names do not give one.

    Notes
    -----
    ``coordinateSystem`` "LPS" is used as is; "RAS" is converted by negating x and y. A
    markup without ``coordinateSystem`` is read as LPS, as Slicer's own reader and the
    schema's default do. Only millimetres are accepted. Level and side come from our
    key=value descriptions, else from names ("L1 left", "L1 L", "L1_R", "left L2"), the
    control point labels ("L1-L entry"), or — for a file with a single markup, as Slicer
    saves them — the file name; sources that disagree are refused.

    Raises
    ------
    MarkupsError
        For unreadable JSON, a wrong structure or value, unknown units or coordinate
        systems, a markup without a recognisable level and side, or two markups for the
        same level and side; the message names the file and the markup.
    """
    p = Path(path)
    try:
        gauge(default_gauge)
    except PlanError as exc:
        raise MarkupsError(f"default gauge: {exc}") from exc
    data = read_json(p, MarkupsError, _JSON_WORDING, encoding="utf-8-sig")
    name = p.name
    stem = name[: -len(SUFFIX)] if name.lower().endswith(SUFFIX) else p.stem
    return plan_from_markups(
        data,
        source=str(p),
        frame_of_reference_uid=frame_of_reference_uid,
        default_gauge=default_gauge,
        file_stem=stem,
    )
