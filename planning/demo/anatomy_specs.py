"""Dimensions of the demo spine, level by level, in millimetres and degrees.

The numbers are typical adult values (vertebral body and pedicle morphometry of the
thoracolumbar spine, Panjabi et al.; lumbar lordosis of a supine adult), rounded and made
to grow smoothly caudally. They describe each vertebra in its own local frame:
x = the patient's left, y = posterior, z = superior (a rotation of LPS, so the same
handedness), with the origin at the centre of the vertebral body.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

LevelKind = Literal["thoracic", "lumbar", "sacrum"]


@dataclass(frozen=True)
class LevelSpec:
    """Shape parameters of one vertebra in its local frame (mm, degrees).

    Heights are measured along the local superior axis at the anterior and the posterior
    wall of the body in the midline; the difference makes the body a wedge (a compression
    fracture is just a strongly wedged body).
    """

    name: str
    code: int  # label code (VerSe numbering: T1 = 8 … T12 = 19, L1 = 20 … L5 = 24, S = 26)
    kind: LevelKind
    body_width_mm: float
    body_depth_mm: float
    anterior_height_mm: float
    posterior_height_mm: float
    canal_width_mm: float  # interpedicular distance
    canal_depth_mm: float  # anteroposterior diameter of the bony canal
    pedicle_width_mm: float  # transverse width of the pedicle isthmus, cortex included
    pedicle_height_mm: float
    pedicle_medial_deg: float  # convergence of the pedicle axis towards the midline
    transverse_tip_mm: float  # distance of the transverse process tip from the midline
    spinous_length_mm: float
    spinous_height_mm: float
    spinous_down_deg: float  # how steeply the spinous process points caudally
    facet_angle_deg: float  # joint with the vertebra above: 0 = sagittal, 90 = coronal
    has_ribs: bool = False
    fractured: bool = False

    @property
    def central_height_mm(self) -> float:
        return 0.5 * (self.anterior_height_mm + self.posterior_height_mm)

    @property
    def wedge_rad(self) -> float:
        """Kyphotic wedge angle of the body (positive when the front is shorter)."""
        diff = self.posterior_height_mm - self.anterior_height_mm
        return 2.0 * math.atan(diff / (2.0 * self.body_depth_mm))

    @property
    def is_thoracic(self) -> bool:
        return self.kind == "thoracic"


@dataclass(frozen=True)
class DiscSpec:
    """An intervertebral disc: central height (mm) and wedge (deg, negative = lordotic)."""

    upper: str
    lower: str
    height_mm: float
    wedge_deg: float

    @property
    def name(self) -> str:
        return f"{self.upper}-{self.lower}"


FRACTURED_LEVEL = "L1"
FRACTURE_ANTERIOR_LOSS = 0.35  # 35 % anterior height loss, a moderate (Genant grade 2) wedge

_L1_POSTERIOR_MM = 26.0

# Superior → inferior. T9 and the sacrum (S1) are partial context at the edges of the scan;
# T10 … L5 are the planned levels.
LEVEL_SPECS: tuple[LevelSpec, ...] = (
    LevelSpec("T9", 16, "thoracic", 35.0, 28.0, 20.5, 21.5, 16.5, 16.0, 6.0, 14.0, 8.0,
              39.0, 36.0, 9.0, 45.0, 75.0, has_ribs=True),
    LevelSpec("T10", 17, "thoracic", 37.0, 29.5, 21.0, 22.5, 17.0, 16.0, 6.5, 15.0, 7.0,
              38.0, 34.0, 10.0, 40.0, 75.0, has_ribs=True),
    LevelSpec("T11", 18, "thoracic", 39.5, 31.0, 22.0, 23.5, 18.0, 16.5, 7.6, 16.0, 4.0,
              34.0, 32.0, 12.0, 28.0, 70.0, has_ribs=True),
    LevelSpec("T12", 19, "thoracic", 41.5, 32.0, 23.0, 25.0, 19.5, 17.0, 7.8, 16.0, 3.0,
              30.0, 30.0, 16.0, 15.0, 55.0, has_ribs=True),
    LevelSpec("L1", 20, "lumbar", 43.0, 33.0,
              round(_L1_POSTERIOR_MM * (1.0 - FRACTURE_ANTERIOR_LOSS), 2), _L1_POSTERIOR_MM,
              21.5, 17.5, 7.5, 15.5, 9.0, 36.0, 30.0, 20.0, 8.0, 30.0, fractured=True),
    LevelSpec("L2", 21, "lumbar", 45.0, 34.0, 26.5, 27.0, 22.0, 17.0, 8.5, 15.0, 12.0,
              42.0, 30.0, 22.0, 5.0, 30.0),
    LevelSpec("L3", 22, "lumbar", 47.0, 35.0, 27.5, 27.5, 23.0, 16.5, 10.0, 14.5, 15.0,
              48.0, 30.0, 22.0, 2.0, 35.0),
    LevelSpec("L4", 23, "lumbar", 48.5, 35.0, 27.5, 26.5, 24.0, 16.5, 11.5, 14.0, 18.0,
              44.0, 28.0, 20.0, 0.0, 42.0),
    LevelSpec("L5", 24, "lumbar", 50.0, 34.0, 28.5, 25.0, 26.0, 17.0, 13.5, 13.5, 25.0,
              42.0, 22.0, 16.0, -5.0, 48.0),
    LevelSpec("S1", 26, "sacrum", 50.0, 33.0, 30.0, 30.0, 28.0, 14.0, 16.0, 15.0, 30.0,
              58.0, 14.0, 14.0, 10.0, 50.0),
)

DISC_SPECS: tuple[DiscSpec, ...] = (
    DiscSpec("T9", "T10", 5.0, 1.0),
    DiscSpec("T10", "T11", 5.5, 1.0),
    DiscSpec("T11", "T12", 6.0, 0.5),
    DiscSpec("T12", "L1", 7.0, 0.0),
    DiscSpec("L1", "L2", 8.5, -3.0),
    DiscSpec("L2", "L3", 9.5, -5.0),
    DiscSpec("L3", "L4", 10.0, -7.0),
    DiscSpec("L4", "L5", 10.5, -9.0),
    DiscSpec("L5", "S1", 10.0, -10.0),
)

SACRAL_SLOPE_DEG = 38.0  # inclination of the S1 endplate from the horizontal, supine

PLANNED_LEVELS: tuple[str, ...] = ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5")


def spec_by_name(name: str) -> LevelSpec:
    """The spec of one level (``"T10"`` …), raising KeyError for an unknown name."""
    for spec in LEVEL_SPECS:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown demo level {name!r}")
