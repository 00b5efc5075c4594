"""What a safety check of one needle gives: the verdict, every number, and the limits used.

Why apart from `planning.checks`: the result and the limits are plain values that panels,
reports, exports and training read, compare and store; the check that fills them holds the
CT's surfaces and KD-trees. Distances are between the needle's outer surface and the
structure, in mm; negative means the needle is inside it by that depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from planning.canal_margin import CanalMarginAt
from planning.image_evidence import PLATES_MIN_GAP_MM, RAY_DIRECTIONS_LOCAL
from planning.plan import Side


class Status(StrEnum):
    SAFE = "safe"
    CAUTION = "caution"
    UNSAFE = "unsafe"


@dataclass(frozen=True)
class SafetyLimits:
    """Thresholds of the checks, in mm unless stated, with where each default comes from."""

    canal_caution_mm: float = 2.0
    """Clearance below which a needle outside the canal is 'caution'. The Gertzbein–Robbins
    breach grades step by 2 mm (Gertzbein SD, Robbins SE. Spine 1990;15:11–14); a 2 mm
    margin keeps a planned path one grade away from any breach."""
    anterior_cortex_warn_mm: float = 3.0
    """Tip closer than this to the anterior cortex (along the needle) is 'caution'; through
    the cortex is 'unsafe' (cement and needle leakage anteriorly: great vessels)."""
    target_depth_min: float = 0.5
    """Tip depth as a fraction of the body (0 = posterior wall, 1 = anterior wall) below
    which the tip is 'caution': the classic target is the anterior third (≥ 0.67), and
    cement from a tip in the posterior half runs towards the basivertebral veins and canal
    (Mathis JM et al., AJNR 2001;22:373–381)."""
    midline_max_mm: float = 15.0
    """Tip farther than this from the mid-sagittal plane is 'caution' (for a bilateral
    approach each tip lies near, not across, the midline)."""
    pair_min_distance_mm: float = 3.0
    """Left and right needles of one level closer than this (surface to surface) is
    'caution'; touching is 'unsafe'."""
    wall_breach_caution_mm: float = 0.5
    """A pedicle wall breach deeper than this is reported (lateral/superior/inferior:
    'caution'; medial — towards the canal — : 'unsafe')."""
    vessel_min_mm: float = 3.0
    """A needle whose surface comes closer than this to a contrast-filled vessel (aorta,
    vena cava, azygos, iliac vessels, heart) is 'unsafe': a needle or cement in a great
    vessel is the other catastrophe of vertebroplasty, and 3 mm is one voxel of a thick-
    slice CT plus the blur of the vessel's wall."""
    vessel_caution_mm: float = 5.0
    """…and closer than this, 'caution'."""
    atypical_medial_deg: float = 25.0
    """A needle more than this beyond the normal pedicle axis of its level, medially or
    laterally (transverse angle, `planning.assessment.pedicle_norms`), is an atypical path
    and says so ('caution'): a transpedicular needle converges a little more than its
    pedicle (aiming at the midline: up to about 20° at T11–T12, whose pedicles run straight
    back), not 35° more (that comes from over the rib or through the canal's roof)."""
    atypical_craniocaudal_deg: float = 30.0
    """Same for the craniocaudal angle against the level's normal sagittal pedicle angle."""
    sample_step_mm: float = 2.0
    """Coarse sampling step along the needle before refinement (distances change by at
    most this much between samples, and the minimum is then refined at a quarter mm)."""

GRADE_LIMITS_MM = (("A", 0.0), ("B", 2.0), ("C", 4.0), ("D", 6.0))


def breach_grade(canal_clearance_mm: float) -> str:
    """Gertzbein–Robbins style grade from the depth inside the canal.

    A: none (clearance ≥ 0), B: < 2 mm, C: 2–4 mm, D: 4–6 mm, E: > 6 mm.
    """
    depth = -canal_clearance_mm
    if depth <= 0.0:
        return "A"
    for grade, limit in GRADE_LIMITS_MM[1:]:
        if depth < limit:
            return grade
    return "E"


@dataclass(frozen=True)
class WallBreach:
    wall: str  # "medial", "lateral", "superior", "inferior"
    depth_mm: float


@dataclass(frozen=True)
class CheckResult:
    """Every number of one trajectory's check, and the verdict with its reasons."""

    level: str
    side: Side
    status: Status
    canal_clearance_mm: float
    breach_grade: str
    closest_canal_point_lps: tuple[float, float, float]
    wall_breaches: tuple[WallBreach, ...]
    tip_in_body: bool
    tip_level: str | None
    tip_to_anterior_cortex_mm: float | None
    tip_depth_fraction: float | None
    tip_to_midline_mm: float
    crossings: tuple[str, ...]
    pair_distance_mm: float | None
    length_mm: float
    skin_to_tip_mm: float | None
    medial_angle_deg: float
    craniocaudal_angle_deg: float
    medial_angle_vertebra_deg: float
    craniocaudal_angle_vertebra_deg: float
    reasons: tuple[str, ...] = field(default=())
    vessel_clearance_mm: float | None = None
    """Needle surface to the nearest contrast-filled vessel found in the CT (negative:
    inside it); None when the CT shows none near the spine."""
    tip_walled_directions: int | None = None
    """Of `tip_rays` directions from the tip, how many meet a bony wall in the image before
    leaving the bone (`planning.image_evidence`); None when not measured."""
    tip_rays: int = len(RAY_DIRECTIONS_LOCAL)
    tip_hu: float | None = None
    tip_bone_ahead_mm: float | None = None
    """Along the needle, from the tip to the next bony wall or the bone's end in the image
    (None: neither within 40 mm, or not measured)."""
    tip_behind_hu: float | None = None  # the bone the needle crossed before the tip, HU
    tip_dense: bool = False  # the tip sits in bone much denser than that (image_evidence)
    tip_plates_gap_mm: float | None = None
    """Between the first walls straight above and below the tip (image_evidence): a
    body's endplates, or under `PLATES_MIN_GAP_MM` a disc's."""
    canal_margin: CanalMarginAt | None = None
    """Where the path passes an automatically found canal most tightly against its wall's
    uncertainty (`planning.canal_margin`): the clearance there, the uncertainty (half a
    millimetre at bone, more at soft tissue) and the clearance needed. None for an imported
    canal (trusted as drawn) or a needle in the canal."""
    approach: str = "transpedicular"
    """"transpedicular", "parapedicular" (lateral to the pedicle: through the
    costovertebral junction in the thoracic spine) or "atypical" (angles far from the
    level's pedicle axis)."""

    @property
    def canal_uncertainty_mm(self) -> float | None:
        """How far the automatic canal's wall may be off at `canal_margin`'s point."""
        return None if self.canal_margin is None else self.canal_margin.uncertainty_mm

    @property
    def canal_margin_slack_mm(self) -> float | None:
        """At that point, the clearance less what the wall's uncertainty asks for:
        negative, and the path is too near a canal that may reach further than found."""
        m = self.canal_margin
        return None if m is None else m.clearance_mm - m.needed_mm

    @property
    def canal_margin_kept(self) -> bool:
        """The path keeps the clearance the canal wall's uncertainty asks for (always, on an
        imported canal)."""
        return self.canal_margin is None or self.canal_margin.kept

    @property
    def tip_between_plates(self) -> bool:
        """The plates above and below the tip are a disc's, not a body's endplates
        (`TipEvidence.between_plates`)."""
        return (self.tip_plates_gap_mm is not None
                and self.tip_plates_gap_mm < PLATES_MIN_GAP_MM)

    def to_json(self) -> dict[str, object]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(float(v), 2)

        return {
            "level": self.level,
            "side": self.side.value,
            "status": self.status.value,
            "canal_clearance_mm": r(self.canal_clearance_mm),
            "breach_grade": self.breach_grade,
            "wall_breaches": [
                {"wall": b.wall, "depth_mm": r(b.depth_mm)} for b in self.wall_breaches
            ],
            "tip_in_body": self.tip_in_body,
            "tip_level": self.tip_level,
            "tip_to_anterior_cortex_mm": r(self.tip_to_anterior_cortex_mm),
            "tip_depth_fraction": r(self.tip_depth_fraction),
            "tip_to_midline_mm": r(self.tip_to_midline_mm),
            "crossings": list(self.crossings),
            "pair_distance_mm": r(self.pair_distance_mm),
            "length_mm": r(self.length_mm),
            "skin_to_tip_mm": r(self.skin_to_tip_mm),
            "medial_angle_deg": r(self.medial_angle_deg),
            "craniocaudal_angle_deg": r(self.craniocaudal_angle_deg),
            "medial_angle_vertebra_deg": r(self.medial_angle_vertebra_deg),
            "craniocaudal_angle_vertebra_deg": r(self.craniocaudal_angle_vertebra_deg),
            "reasons": list(self.reasons),
            "vessel_clearance_mm": r(self.vessel_clearance_mm),
            "tip_walled_directions": self.tip_walled_directions,
            "tip_rays": self.tip_rays,
            "tip_hu": r(self.tip_hu),
            "tip_bone_ahead_mm": r(self.tip_bone_ahead_mm),
            "tip_behind_hu": r(self.tip_behind_hu),
            "tip_dense": self.tip_dense,
            "tip_plates_gap_mm": r(self.tip_plates_gap_mm),
            "canal_uncertainty_mm": r(self.canal_uncertainty_mm),
            "canal_margin_slack_mm": r(self.canal_margin_slack_mm),
            "approach": self.approach,
        }

