"""Normal pedicle dimensions and angles per level, T1–L5, from the literature.

Why: a pedicle width means little on its own. A 5 mm pedicle is normal at T5 but
half the normal width at L4. So each measurement is compared with the mean and SD of
its own level.

Sources
-------
[Z] Zindrick MR, Wiltse LL, Doornik A, et al. "Analysis of the morphometric
    characteristics of the thoracic and lumbar pedicles." Spine 1987;12(2):160–166.
    (2905 pedicles, CT and radiographs; transverse (isthmus) width, height, transverse and
    sagittal angles, chord length to the anterior cortex.)
[P91] Panjabi MM, Takata K, Goel V, et al. "Thoracic human vertebrae: quantitative
    three-dimensional anatomy." Spine 1991;16(8):888–901.
[P92] Panjabi MM, Goel V, Oxland T, et al. "Human lumbar vertebrae: quantitative
    three-dimensional anatomy." Spine 1992;17(3):299–306.

The widths and heights follow [Z] (outer cortex to outer cortex at the isthmus), which
[P91]/[P92] agree with to within about 1 mm. Transverse width is narrowest at T4–T5
(4.5–5 mm) and widest at L5. The angles and chord lengths are rounded readings of the
curves in [Z], [P91] and [P92], and their SDs are **approximate**. They were written
from the papers' tables and figures as summarised in later reviews, not re-derived.
Treat them as typical values, not as exact published numbers. S1 is not covered by
these studies, so it has no norm (`norm_for` returns None).

Conventions (the same as `planning.assessment.pedicle_morphometry`): the transverse
angle is the pedicle axis against the vertebra's mid-sagittal plane, seen in the axial
plane, positive when the axis converges medially from back to front. The sagittal angle
is the axis against the vertebra's axial (endplate) plane, seen in the sagittal plane,
positive when the axis runs caudally from back to front (the thoracic "anatomic"
trajectory). The chord length runs along the axis from the posterior cortex at the entry
to the anterior cortex of the body.

====== ============ ============ ============ ============== ==============
level  width mm     height mm    chord mm     transverse deg sagittal deg
====== ============ ============ ============ ============== ==============
T1     7.9 ± 1.9    9.9 ± 1.5    32 ± 4       27 ± 6         14 ± 5
T2     7.0 ± 1.5    12.0 ± 1.5   34 ± 4       22 ± 6         16 ± 5
T3     5.6 ± 1.3    12.1 ± 1.5   36 ± 4       15 ± 5         16 ± 5
T4     4.7 ± 1.2    11.3 ± 1.5   37 ± 4       12 ± 5         16 ± 5
T5     4.5 ± 1.1    11.1 ± 1.5   38 ± 4       10 ± 5         15 ± 5
T6     5.2 ± 1.7    11.3 ± 1.5   39 ± 4       9 ± 5          15 ± 5
T7     5.3 ± 1.2    11.8 ± 1.5   40 ± 4       8 ± 5          15 ± 5
T8     5.9 ± 1.2    12.0 ± 1.5   41 ± 4       7 ± 5          14 ± 5
T9     6.1 ± 1.4    13.7 ± 1.5   42 ± 4       6 ± 5          13 ± 5
T10    6.3 ± 1.7    15.2 ± 1.7   43 ± 4       5 ± 5          12 ± 5
T11    7.8 ± 2.0    16.9 ± 1.8   43 ± 4       2 ± 5          11 ± 5
T12    7.1 ± 1.8    16.1 ± 1.8   44 ± 4       0 ± 6          9 ± 5
L1     8.7 ± 2.1    15.4 ± 1.8   45 ± 4       11 ± 5         6 ± 5
L2     8.9 ± 1.8    15.0 ± 1.6   47 ± 4       12 ± 5         5 ± 5
L3     10.3 ± 2.6   14.9 ± 1.7   48 ± 4       14 ± 5         4 ± 5
L4     12.9 ± 2.4   14.8 ± 1.8   49 ± 4       18 ± 5         3 ± 5
L5     18.0 ± 4.2   14.0 ± 2.0   48 ± 5       30 ± 6         2 ± 5
====== ============ ============ ============ ============== ==============
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from planning.errors import VertebroPlanError

OUTSIDE_Z = 2.0  # |z| above this is outside the normal range (about the 2.5th / 97.5th
# percentiles of a normal distribution), the usual reference-interval convention


class NormError(VertebroPlanError, ValueError):
    """A norm was asked for a quantity or level that this table does not hold."""


class Quantity(StrEnum):
    """What a norm describes (its unit is in the name)."""

    WIDTH = "width_mm"
    HEIGHT = "height_mm"
    CHORD = "chord_mm"
    TRANSVERSE_ANGLE = "transverse_angle_deg"
    SAGITTAL_ANGLE = "sagittal_angle_deg"


@dataclass(frozen=True)
class Norm:
    """Mean and SD of one quantity at one level, and where it comes from."""

    mean: float
    sd: float
    source: str


@dataclass(frozen=True)
class LevelNorms:
    """The pedicle norms of one level (mm and degrees)."""

    level: str
    width_mm: Norm
    height_mm: Norm
    chord_mm: Norm
    transverse_angle_deg: Norm
    sagittal_angle_deg: Norm

    def of(self, quantity: Quantity | str) -> Norm:
        norm: Norm = getattr(self, Quantity(quantity).value)
        return norm


_SIZE_SOURCE = "Zindrick 1987 (Spine 12:160–166); Panjabi 1991/1992"
_ANGLE_SOURCE = "Zindrick 1987; Panjabi 1991 (Spine 16:888–901), 1992 (Spine 17:299–306); approx."
_CHORD_SOURCE = "Zindrick 1987 chord length; approximate"

# level: (width, sd), (height, sd), (chord, sd), (transverse, sd), (sagittal, sd)
_TABLE: dict[str, tuple[tuple[float, float], ...]] = {
    "T1": ((7.9, 1.9), (9.9, 1.5), (32.0, 4.0), (27.0, 6.0), (14.0, 5.0)),
    "T2": ((7.0, 1.5), (12.0, 1.5), (34.0, 4.0), (22.0, 6.0), (16.0, 5.0)),
    "T3": ((5.6, 1.3), (12.1, 1.5), (36.0, 4.0), (15.0, 5.0), (16.0, 5.0)),
    "T4": ((4.7, 1.2), (11.3, 1.5), (37.0, 4.0), (12.0, 5.0), (16.0, 5.0)),
    "T5": ((4.5, 1.1), (11.1, 1.5), (38.0, 4.0), (10.0, 5.0), (15.0, 5.0)),
    "T6": ((5.2, 1.7), (11.3, 1.5), (39.0, 4.0), (9.0, 5.0), (15.0, 5.0)),
    "T7": ((5.3, 1.2), (11.8, 1.5), (40.0, 4.0), (8.0, 5.0), (15.0, 5.0)),
    "T8": ((5.9, 1.2), (12.0, 1.5), (41.0, 4.0), (7.0, 5.0), (14.0, 5.0)),
    "T9": ((6.1, 1.4), (13.7, 1.5), (42.0, 4.0), (6.0, 5.0), (13.0, 5.0)),
    "T10": ((6.3, 1.7), (15.2, 1.7), (43.0, 4.0), (5.0, 5.0), (12.0, 5.0)),
    "T11": ((7.8, 2.0), (16.9, 1.8), (43.0, 4.0), (2.0, 5.0), (11.0, 5.0)),
    "T12": ((7.1, 1.8), (16.1, 1.8), (44.0, 4.0), (0.0, 6.0), (9.0, 5.0)),
    "L1": ((8.7, 2.1), (15.4, 1.8), (45.0, 4.0), (11.0, 5.0), (6.0, 5.0)),
    "L2": ((8.9, 1.8), (15.0, 1.6), (47.0, 4.0), (12.0, 5.0), (5.0, 5.0)),
    "L3": ((10.3, 2.6), (14.9, 1.7), (48.0, 4.0), (14.0, 5.0), (4.0, 5.0)),
    "L4": ((12.9, 2.4), (14.8, 1.8), (49.0, 4.0), (18.0, 5.0), (3.0, 5.0)),
    "L5": ((18.0, 4.2), (14.0, 2.0), (48.0, 5.0), (30.0, 6.0), (2.0, 5.0)),
}


def _build() -> MappingProxyType[str, LevelNorms]:
    out = {}
    for level, (w, h, c, t, s) in _TABLE.items():
        out[level] = LevelNorms(
            level=level,
            width_mm=Norm(*w, _SIZE_SOURCE),
            height_mm=Norm(*h, _SIZE_SOURCE),
            chord_mm=Norm(*c, _CHORD_SOURCE),
            transverse_angle_deg=Norm(*t, _ANGLE_SOURCE),
            sagittal_angle_deg=Norm(*s, _ANGLE_SOURCE),
        )
    return MappingProxyType(out)


PEDICLE_NORMS: MappingProxyType[str, LevelNorms] = _build()
"""Norms per level name, T1 … L5 (cranial to caudal)."""


def norm_for(level: str) -> LevelNorms | None:
    """The norms of ``level`` ("l3" is accepted), or None for a level without norms
    (cervical, S1)."""
    return PEDICLE_NORMS.get(str(level).strip().upper())


# words for below / within / above the normal range, per quantity
_WORDS: dict[Quantity, tuple[str, str, str]] = {
    Quantity.WIDTH: ("narrow", "normal", "wide"),
    Quantity.HEIGHT: ("low", "normal", "tall"),
    Quantity.CHORD: ("short", "normal", "long"),
    Quantity.TRANSVERSE_ANGLE: ("below normal", "normal", "above normal"),
    Quantity.SAGITTAL_ANGLE: ("below normal", "normal", "above normal"),
}


@dataclass(frozen=True)
class NormComparison:
    """A measurement against its level's norm.

    ``z`` is (value − mean) / SD; ``category`` is the word for below (z < −2), within or
    above (z > 2) the normal range, e.g. "narrow" / "normal" / "wide" for the width.
    """

    level: str
    quantity: Quantity
    value: float
    mean: float
    sd: float
    z: float
    category: str
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "value": round(self.value, 2),
            "mean": self.mean,
            "sd": self.sd,
            "z": round(self.z, 2),
            "category": self.category,
            "source": self.source,
        }


def compare(level: str, quantity: Quantity | str, value: float) -> NormComparison | None:
    """``value`` against the norm of ``quantity`` at ``level``; None where there is no norm.

    Raises `NormError` for an unknown quantity name.
    """
    try:
        q = Quantity(quantity)
    except ValueError as exc:
        known = ", ".join(x.value for x in Quantity)
        raise NormError(f"'{quantity}' is not a pedicle quantity ({known})") from exc
    norms = norm_for(level)
    if norms is None:
        return None
    n = norms.of(q)
    z = (float(value) - n.mean) / n.sd
    low, normal, high = _WORDS[q]
    category = low if z < -OUTSIDE_Z else high if z > OUTSIDE_Z else normal
    return NormComparison(norms.level, q, float(value), n.mean, n.sd, z, category, n.source)
