"""The plan: per vertebral level, a left and/or right needle trajectory, in LPS millimetres.

Everything here is an immutable value: an edit makes a new `Plan`, so undo keeps snapshots
and derived data (checks, meshes) can be cached by value.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from planning.errors import VertebroPlanError

Point = tuple[float, float, float]


class PlanError(VertebroPlanError, ValueError):
    """A plan value is invalid (unknown level, zero-length needle, …)."""


LEVEL_NAMES: tuple[str, ...] = (
    *(f"C{i}" for i in range(1, 8)),
    *(f"T{i}" for i in range(1, 13)),
    *(f"L{i}" for i in range(1, 6)),
    "S1",
)
_LEVEL_INDEX = {name: i for i, name in enumerate(LEVEL_NAMES)}


def validate_level(name: str) -> str:
    """Return the canonical level name ("l1" → "L1"), or raise `PlanError`."""
    canonical = str(name).strip().upper()
    if canonical not in _LEVEL_INDEX:
        raise PlanError(f"'{name}' is not a vertebral level (C1–C7, T1–T12, L1–L5, S1)")
    return canonical


def level_index(name: str) -> int:
    """Cranio-caudal order: C1 = 0 … S1 = 24."""
    return _LEVEL_INDEX[validate_level(name)]


def shift_level(name: str, offset: int) -> str:
    """The level ``offset`` positions caudal (+) or cranial (−) of ``name``."""
    i = level_index(name) + offset
    if not 0 <= i < len(LEVEL_NAMES):
        raise PlanError(f"shifting {name} by {offset:+d} leaves the spine")
    return LEVEL_NAMES[i]


class Side(StrEnum):
    """The patient's side (not the screen's)."""

    LEFT = "left"
    RIGHT = "right"

    @property
    def lps_sign(self) -> float:
        """+1 for the patient's left (LPS +x), −1 for the right."""
        return 1.0 if self is Side.LEFT else -1.0

    @property
    def letter(self) -> str:
        return "L" if self is Side.LEFT else "R"

    @classmethod
    def parse(cls, value: str | Side) -> Side:
        if isinstance(value, Side):
            return value
        v = str(value).strip().lower()
        aliases = {"l": "left", "r": "right", "left": "left", "right": "right"}
        if v not in aliases:
            raise PlanError(f"'{value}' is not a side (left or right, the patient's side)")
        return cls(aliases[v])


@dataclass(frozen=True)
class NeedleGauge:
    """A needle size: its gauge label and outer diameter in mm."""

    name: str
    outer_diameter_mm: float

    @property
    def radius_mm(self) -> float:
        return self.outer_diameter_mm / 2.0


# Outer diameters of bone-biopsy / vertebroplasty needles (Stubs' iron wire gauge).
GAUGES: MappingProxyType[str, NeedleGauge] = MappingProxyType(
    {
        "10G": NeedleGauge("10G", 3.40),
        "11G": NeedleGauge("11G", 3.05),
        "13G": NeedleGauge("13G", 2.41),
        "15G": NeedleGauge("15G", 1.83),
    }
)
DEFAULT_GAUGE = "11G"


def gauge(name: str) -> NeedleGauge:
    """Look up a gauge by its label ("11G", "11 g" and "11" are accepted)."""
    key = re.sub(r"\s+", "", str(name)).upper()
    if not key.endswith("G"):
        key += "G"
    if key not in GAUGES:
        raise PlanError(f"'{name}' is not a known needle gauge ({', '.join(GAUGES)})")
    return GAUGES[key]


def as_point(value: Any, what: str = "point") -> Point:
    """A finite 3-vector as a tuple of floats (LPS mm), or `PlanError`."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"{what} must be three numbers [x, y, z] in mm") from exc
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise PlanError(f"{what} must be three finite numbers [x, y, z] in mm")
    return (float(arr[0]), float(arr[1]), float(arr[2]))


@dataclass(frozen=True)
class Trajectory:
    """One needle path from skin/bone entry to tip, in patient LPS millimetres."""

    level: str
    side: Side
    entry_lps: Point
    target_lps: Point
    gauge: str = DEFAULT_GAUGE
    note: str = ""
    extra: tuple[tuple[str, Any], ...] = field(default=(), compare=False)
    """Keys of the plan file that this version does not know, kept so a save loses nothing."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "level", validate_level(self.level))
        object.__setattr__(self, "side", Side.parse(self.side))
        object.__setattr__(self, "entry_lps", as_point(self.entry_lps, "entry_lps"))
        object.__setattr__(self, "target_lps", as_point(self.target_lps, "target_lps"))
        object.__setattr__(self, "gauge", gauge(self.gauge).name)
        if self.length_mm < 1.0:
            raise PlanError(f"{self.label}: entry and target are {self.length_mm:.2f} mm apart")

    @property
    def key(self) -> tuple[str, Side]:
        return (self.level, self.side)

    @property
    def label(self) -> str:
        """Human label, e.g. "Left L2"."""
        return f"{self.side.value.capitalize()} {self.level}"

    @property
    def entry(self) -> NDArray[np.float64]:
        """Entry point as a new array (LPS mm)."""
        return np.array(self.entry_lps)

    @property
    def target(self) -> NDArray[np.float64]:
        """Tip as a new array (LPS mm)."""
        return np.array(self.target_lps)

    @property
    def direction(self) -> NDArray[np.float64]:
        """Unit vector from entry to tip (LPS)."""
        e, t = self.entry_lps, self.target_lps
        d = np.array((t[0] - e[0], t[1] - e[1], t[2] - e[2]))
        return np.asarray(d / self.length_mm)

    @property
    def length_mm(self) -> float:
        e, t = self.entry_lps, self.target_lps
        return math.dist(e, t)

    @property
    def radius_mm(self) -> float:
        return GAUGES[self.gauge].radius_mm  # the name is canonical after __post_init__

    def moved(self, *, entry_lps: Any | None = None, target_lps: Any | None = None) -> Trajectory:
        """A copy with a new entry and/or target."""
        return replace(
            self,
            entry_lps=self.entry_lps if entry_lps is None else as_point(entry_lps),
            target_lps=self.target_lps if target_lps is None else as_point(target_lps),
        )

    def translated(self, delta_lps: Any) -> Trajectory:
        """The whole needle shifted by ``delta_lps`` mm."""
        d = np.asarray(delta_lps, dtype=np.float64)
        return self.moved(entry_lps=self.entry + d, target_lps=self.target + d)


@dataclass(frozen=True)
class FrameOverride:
    """Record that a plan was knowingly applied to a CT with another frame of reference."""

    plan_frame_uid: str
    ct_frame_uid: str
    reason: str = "explicit override"


@dataclass(frozen=True)
class Plan:
    """All trajectories planned on one CT (identified by its UIDs)."""

    study_uid: str = ""
    series_uid: str = ""
    frame_of_reference_uid: str = ""
    trajectories: tuple[Trajectory, ...] = ()
    frame_override: FrameOverride | None = None
    extra: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        keys = [t.key for t in self.trajectories]
        dupes = {k for k in keys if keys.count(k) > 1}
        if dupes:
            level, side = sorted(dupes)[0]
            raise PlanError(f"the plan has two {side.value} trajectories at {level}")
        ordered = tuple(sorted(self.trajectories, key=lambda t: (level_index(t.level), t.side)))
        object.__setattr__(self, "trajectories", ordered)

    @property
    def levels(self) -> tuple[str, ...]:
        """Planned levels, cranial to caudal."""
        return tuple(dict.fromkeys(t.level for t in self.trajectories))

    def get(self, level: str, side: Side | str) -> Trajectory | None:
        key = (validate_level(level), Side.parse(side))
        return next((t for t in self.trajectories if t.key == key), None)

    def with_trajectory(self, trajectory: Trajectory) -> Plan:
        """A plan where ``trajectory`` replaces the one at its level and side (or is added)."""
        rest = tuple(t for t in self.trajectories if t.key != trajectory.key)
        return replace(self, trajectories=(*rest, trajectory))

    def without(self, level: str, side: Side | str | None = None) -> Plan:
        """A plan without the trajectory at ``level``/``side`` (both sides if side is None)."""
        lv = validate_level(level)
        sd = None if side is None else Side.parse(side)
        keep = tuple(
            t for t in self.trajectories if not (t.level == lv and (sd is None or t.side == sd))
        )
        return replace(self, trajectories=keep)
