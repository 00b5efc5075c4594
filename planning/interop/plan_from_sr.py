"""A needle plan read back from a DICOM Comprehensive 3D SR written by
`planning.interop.dicom_sr.write_plan_sr`.

Why apart from the writer: opening a plan (`planning.interop.any_plan`) needs only this
reader, which walks the SR's content tree by the codes of `planning.interop.dicom_codes`
and rebuilds each trajectory from its measurement group: level and side from the finding
site, entry and tip from the SCOORD3D polyline (which runs entry → tip), gauge and note from
their text items.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.coding import Code
from pydicom.uid import Comprehensive3DSRStorage

from planning.interop.derived_dicom import parse_content
from planning.interop.dicom_codes import (
    COMMENT,
    FINDING,
    FINDING_SITE,
    IMAGING_MEASUREMENT_REPORT,
    IMAGING_MEASUREMENTS,
    LATERALITY_CONCEPT,
    LEVEL_BY_CODE,
    MEASUREMENT_GROUP,
    NEEDLE,
    NEEDLE_GAUGE,
    SIDE_BY_CODE,
    TRACKING_IDENTIFIER,
    code_key,
    key_of,
)
from planning.interop.plan_file import PlanFormatError
from planning.io.dicom_headers import read_whole_dicom
from planning.plan import DEFAULT_GAUGE, Plan, PlanError, Trajectory, gauge


@dataclass(frozen=True)
class _Group:
    """The parts of one measurement group a trajectory is rebuilt from."""

    label: str
    items: tuple[Dataset, ...]


def read_plan_sr(path: str | Path) -> Plan:
    """Rebuild the plan from an SR written by `planning.interop.dicom_sr.write_plan_sr`.

    Levels, sides, entry and tip (LPS mm), gauge and note come from each needle's
    measurement group; the CT's study UID from the SR's study, its series UID from the
    SR's evidence references (empty when the CT was not DICOM), its Frame of Reference
    from the needle paths.

    Raises
    ------
    PlanFormatError
        The file is missing, not DICOM, not a Comprehensive 3D SR measurement report, or
        holds no needle path; the message names the file.
    """
    p = Path(path)
    ds = read_whole_dicom(p, PlanFormatError, (Comprehensive3DSRStorage,),
                          "a needle plan (a Comprehensive 3D SR written by VertebroPlan)")
    return parse_content(p, PlanFormatError, lambda: _plan_from_sr(ds),
                         "is a Comprehensive 3D SR whose content is not a needle plan or is "
                         "damaged")


def _plan_from_sr(ds: Dataset) -> Plan:
    if not _is(ds, IMAGING_MEASUREMENT_REPORT):
        raise PlanFormatError(
            "the SR is not an Imaging Measurement Report (TID 1500), so not a needle plan"
        )
    groups = [
        _Group(_tracking_label(g), tuple(g.get("ContentSequence", ())))
        for container in _children(ds, IMAGING_MEASUREMENTS)
        for g in _children(container, MEASUREMENT_GROUP)
    ]
    needles = [g for g in groups if any(_is_code(i, FINDING, NEEDLE) for i in g.items)]
    if not needles:
        raise PlanFormatError("the SR holds no needle paths, so it is not a needle plan")
    trajectories, frames = [], set()
    for g in needles:
        t, frame_uid = _trajectory(g)
        trajectories.append(t)
        frames.add(frame_uid)
    if len(frames) > 1:
        raise PlanFormatError(
            f"the needle paths lie in {len(frames)} different Frames of Reference"
        )
    try:
        return Plan(
            study_uid=str(ds.get("StudyInstanceUID", "")),
            series_uid=_referenced_series(ds),
            frame_of_reference_uid=frames.pop(),
            trajectories=tuple(trajectories),
        )
    except PlanError as exc:
        raise PlanFormatError(str(exc)) from exc


def _trajectory(g: _Group) -> tuple[Trajectory, str]:
    site = _only(g, [i for i in g.items if _is(i, FINDING_SITE)], "finding site")
    level = LEVEL_BY_CODE.get(code_key(site.ConceptCodeSequence[0]))
    if level is None:
        meaning = site.ConceptCodeSequence[0].get("CodeMeaning", "?")
        raise PlanFormatError(f"{g.label}: '{meaning}' is not a vertebral level (C1–S1)")
    lat = _only(g, list(_children(site, LATERALITY_CONCEPT)), "laterality")
    side = SIDE_BY_CODE.get(code_key(lat.ConceptCodeSequence[0]))
    if side is None:
        raise PlanFormatError(f"{g.label}: laterality must be Left or Right")
    paths = [
        s
        for item in g.items
        for s in _walk(item)
        if s.get("ValueType") == "SCOORD3D" and s.get("GraphicType") == "POLYLINE"
    ]
    path = _only(g, paths, "needle path (SCOORD3D POLYLINE)")
    points = np.asarray(path.GraphicData, dtype=np.float64).reshape(-1, 3)
    if len(points) < 2:
        raise PlanFormatError(f"{g.label}: the needle path has {len(points)} point(s), needs 2")
    gauge_texts = [i.TextValue for i in g.items if _is(i, NEEDLE_GAUGE)]
    notes = [i.TextValue for i in g.items if _is(i, COMMENT) and i.get("ValueType") == "TEXT"]
    try:
        name = gauge(gauge_texts[0]).name if gauge_texts else DEFAULT_GAUGE
        t = Trajectory(
            level,
            side,
            points[0],
            points[-1],
            name,
            note=notes[0] if notes else "",
        )
    except PlanError as exc:
        raise PlanFormatError(f"{g.label}: {exc}") from exc
    return t, str(path.ReferencedFrameOfReferenceUID)


def _referenced_series(ds: Dataset) -> str:
    """The series the SR's evidence references (the CT), or "" when there is none."""
    for seq in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
        for study in ds.get(seq, ()):
            for series in study.get("ReferencedSeriesSequence", ()):
                return str(series.SeriesInstanceUID)
    return ""


def _is(item: Dataset, name: Code) -> bool:
    """Whether a content item's concept name is ``name`` (scheme and value compared)."""
    seq = item.get("ConceptNameCodeSequence")
    return bool(seq) and code_key(seq[0]) == key_of(name)


def _is_code(item: Dataset, name: Code, value: Code) -> bool:
    seq = item.get("ConceptCodeSequence")
    return (
        _is(item, name)
        and bool(seq)
        and code_key(seq[0]) == key_of(value)
    )


def _children(item: Dataset, name: Code) -> Iterator[Dataset]:
    return (c for c in item.get("ContentSequence", ()) if _is(c, name))


def _walk(item: Dataset) -> Iterator[Dataset]:
    yield item
    for child in item.get("ContentSequence", ()):
        yield from _walk(child)


def _tracking_label(group: Dataset) -> str:
    ids = [c.TextValue for c in _children(group, TRACKING_IDENTIFIER)]
    return str(ids[0]) if ids else "a measurement group"


def _only(g: _Group, found: list[Any], what: str) -> Any:
    if len(found) != 1:
        raise PlanFormatError(f"{g.label}: expected one {what}, found {len(found)}")
    return found[0]


__all__ = ["read_plan_sr"]
