"""Is a body's segmentation fit to be graded? Evidence from the CT and from the neighbours.

Why: a Genant grade is a ratio of heights, and a height is only as good as the mask it is
read from. Where the automatic body fill stops inside the bone (the porotic front-upper
corner of a body on a grid turned about the left–right axis, the cut between two
vertebrae placed inside one), the mask is short, and the ratio reads as a wedge or a
crush that the image does not show. Over the accuracy harness's re-storings, every false
Genant ≥ 2 of the labelled CTs came from such a mask. So before a loss becomes a grade,
the measurement is checked against things it must agree with:

- **Endplates seen on the CT.** Beyond the segmented top and bottom of the body, in the
  anterior, middle and posterior bands of the mid-sagittal strip, the CT must step down
  from bone (the endplate's cortex) to disc. Per band end, the median HU profile of the
  strip's lines along the vertebra's superior axis, smoothed over 3 mm so trabecular
  texture is no step, gives ``step`` = the brightest point from 3 mm inside to 1 mm
  outside the surface minus the darkest from 1 to 5 mm outside.
  A mask that stops in cancellous bone has a flat profile there; a true endplate,
  collapsed or not, steps down to the disc. Measured over both labelled CTs' families
  (profiles of every graded body): at `ENDPLATE_STEP_MIN_HU` the check keeps the grade of
  36 of the 38 fractures graded before it (the two lost lie on a phantom whose discs the
  segmentation merged, so their bodies were two vertebrae each) and withholds 25 of the
  35 false grades (the depth check and the whole-body crush take most of the rest); the
  lost front corners of the abdomen's turned storings stepped by 0–21 HU. About a fifth
  of intact bodies miss the limit at one of their six band ends (partial volume on
  tilted 3 mm grids), which is why it is asked only of a body whose heights would grade
  it. Air beyond the surface (below `SCAN_END_HU`) is no disc either: the scan ends
  there, and a body cut by a tilted scan edge reads as a wedge.
- **Depth like its neighbours'.** A fracture takes height, not depth: a crushed body
  keeps (or widens) its front-to-back depth. A body whose depth is under
  `DEPTH_MIN_FRACTION` of its neighbours' median has lost its front or back to the
  segmentation (the harness's failures: 15–30 mm against 36–40 mm; fractures: within
  10 % of their neighbours).

- **A wedge is a body's, not a corner's.** A wedge fracture tilts the endplate: the middle
  height lies between the anterior and the posterior one (about their mean). Where only
  the anterior height is short and the middle is as high as the back or higher, the
  front corner alone is missing: an osteophyte's notch, a limbus, or a body fill that
  stopped short of the corner (VerSe 012's L3 on grids turned 10–15°: front 18–19 mm,
  middle 28 mm, back 26–27 mm, graded Genant 2; its true L1 wedge: 18, 18, 24 mm).

All are measured, with the figures, into `Plausibility`; the grade is withheld with the
reason in words, never silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from planning.assessment.genant import GENANT_MILD
from planning.volume import Volume

if TYPE_CHECKING:
    from planning.assessment.body_profile import BodyProfile

FloatArray = NDArray[np.float64]

ENDPLATE_STEP_MIN_HU = 30.0  # bone-to-disc step an endplate must show beyond the surface
PROFILE_OFFSETS_MM = np.arange(-4.0, 6.01, 1.0)  # along the superior axis, outward > 0
PROFILE_SMOOTH_SAMPLES = 3  # a 3 mm running mean: trabecular texture is no step
PEAK_WINDOW_MM = (-3.0, 1.0)  # where the endplate's cortex is looked for…
DISC_WINDOW_MM = (1.0, 5.0)  # …and the disc beyond it
SCAN_END_HU = -500.0  # darker than any disc beyond an endplate: air, the scan has ended
DEPTH_MIN_FRACTION = 0.8  # of the neighbours' median front-to-back depth
DEPTH_NEIGHBOURS = 2  # levels on each side whose depths make the reference
BAND_NAMES = ("anterior", "middle", "posterior")


@dataclass(frozen=True)
class EndplateSteps:
    """Bone-to-disc steps (HU) beyond each band end: ``{(band, "superior"|"inferior"): HU}``;
    NaN where the band has no lines. ``scan_ends`` holds the band ends beyond which the CT
    holds air instead of a disc (their step is 0: no disc is seen there)."""

    steps: dict[tuple[str, str], float]
    scan_ends: frozenset[tuple[str, str]] = frozenset()

    def weakest(self) -> tuple[str, str, float]:
        """(band, endplate, step) of the weakest finite band end (NaN step when none)."""
        finite = {k: v for k, v in self.steps.items() if np.isfinite(v)}
        if not finite:
            return ("", "", float("nan"))
        key = min(finite, key=lambda k: finite[k])
        return (key[0], key[1], finite[key])

    def to_json(self) -> dict[str, object]:
        steps: dict[str, object] = {f"{b}_{e}": (None if not np.isfinite(v) else round(v, 1))
                                    for (b, e), v in self.steps.items()}
        return steps | {"scan_ends_beyond": sorted(f"{b}_{e}" for b, e in self.scan_ends)}


def band_limits(back_mm: float, front_mm: float, inset_mm: float, band_mm: float,
                middle_half_mm: float) -> dict[str, tuple[float, float]]:
    """The anterior-axis ranges (mm) of the bands the heights are read in."""
    mid = 0.5 * (back_mm + front_mm)
    return {"anterior": (front_mm - inset_mm - band_mm, front_mm - inset_mm),
            "middle": (mid - middle_half_mm, mid + middle_half_mm),
            "posterior": (back_mm + inset_mm, back_mm + inset_mm + band_mm)}


def endplate_steps(volume: Volume, prof: BodyProfile,
                   bands: dict[str, tuple[float, float]]) -> EndplateSteps:
    """The bone-to-disc step beyond the segmented top and bottom of each band (module doc)."""
    g = prof.geometry
    offsets = PROFILE_OFFSETS_MM
    peak = (offsets >= PEAK_WINDOW_MM[0] - 1e-9) & (offsets <= PEAK_WINDOW_MM[1] + 1e-9)
    disc = (offsets >= DISC_WINDOW_MM[0] - 1e-9) & (offsets <= DISC_WINDOW_MM[1] + 1e-9)
    steps: dict[tuple[str, str], float] = {}
    scan_ends: set[tuple[str, str]] = set()
    strip = np.flatnonzero(prof.strip)
    for band in BAND_NAMES:
        lo, hi = bands[band]
        cols = np.flatnonzero((prof.anterior_mm >= lo - 1e-9) & (prof.anterior_mm <= hi + 1e-9))
        for endplate, ends, sign in (("superior", prof.top_mm, 1.0),
                                     ("inferior", prof.bottom_mm, -1.0)):
            sub = ends[np.ix_(strip, cols)]
            ok = np.isfinite(sub)
            if not ok.any():
                steps[(band, endplate)] = float("nan")
                continue
            li, ai = np.nonzero(ok)
            left = prof.left_mm[strip[li]]
            ant = prof.anterior_mm[cols[ai]]
            sup = sub[ok][:, None] + sign * offsets[None, :]  # [line, offset]
            pts = (g.centroid_lps + left[:, None, None] * g.left_lps
                   + ant[:, None, None] * g.anterior_lps
                   + sup[..., None] * g.superior_lps).reshape(-1, 3)
            ijk = volume.to_index(pts)
            hu = ndimage.map_coordinates(volume.array, [ijk[:, 2], ijk[:, 1], ijk[:, 0]],
                                         order=1, cval=-1024.0, output=np.float32)
            profile = ndimage.uniform_filter1d(
                np.median(hu.reshape(len(left), len(offsets)), axis=0),
                PROFILE_SMOOTH_SAMPLES, mode="nearest")
            beyond = float(profile[disc].min())
            if beyond < SCAN_END_HU:  # a body cut by the scan's end steps down to air
                scan_ends.add((band, endplate))
                steps[(band, endplate)] = 0.0
            else:
                steps[(band, endplate)] = float(profile[peak].max() - beyond)
    return EndplateSteps(steps, frozenset(scan_ends))


def depth_plausible(depth_mm: float, reference_depth_mm: float | None) -> bool:
    """At least `DEPTH_MIN_FRACTION` of the neighbours' depth (True without neighbours)."""
    return reference_depth_mm is None or depth_mm >= DEPTH_MIN_FRACTION * reference_depth_mm


def reference_depth(depths: dict[str, float], order: list[str], level: str) -> float | None:
    """The median depth of up to `DEPTH_NEIGHBOURS` measured levels on each side."""
    i = order.index(level)
    near = [depths[n] for n in order[max(0, i - DEPTH_NEIGHBOURS):i + DEPTH_NEIGHBOURS + 1]
            if n != level and n in depths]
    return float(np.median(near)) if near else None


@dataclass(frozen=True)
class Plausibility:
    """Whether one body's measurement may be graded, and why not (``reasons``, in words)."""

    depth_mm: float
    reference_depth_mm: float | None
    endplates: EndplateSteps
    reasons: tuple[str, ...] = ()

    @property
    def depth_plausible(self) -> bool:
        return depth_plausible(self.depth_mm, self.reference_depth_mm)

    @property
    def endplates_seen(self) -> bool:
        step = self.endplates.weakest()[2]
        return not np.isfinite(step) or step >= ENDPLATE_STEP_MIN_HU

    def to_json(self) -> dict[str, object]:
        return {"depth_mm": round(self.depth_mm, 1),
                "reference_depth_mm": (None if self.reference_depth_mm is None
                                       else round(self.reference_depth_mm, 1)),
                "endplate_steps_hu": self.endplates.to_json(),
                "reasons": list(self.reasons)}


def corner_only(anterior_mm: float, middle_mm: float, posterior_mm: float) -> bool:
    """Only the front corner is short: the anterior height is short against the middle
    (by a mild grade's loss, `GENANT_MILD`) while the middle is at least the posterior (no
    wedge tilts a body so; see the module doc). A crush lowers all three alike."""
    return anterior_mm < (1.0 - GENANT_MILD) * middle_mm and middle_mm >= posterior_mm


def judge(depth_mm: float, ref_depth_mm: float | None, endplates: EndplateSteps,
          would_grade: bool, heights_mm: tuple[float, float, float] | None = None
          ) -> Plausibility:
    """The plausibility of one body; ``would_grade``: its heights give a Genant grade ≥ 1
    (the endplates and the heights' shape, anterior, middle and posterior ``heights_mm``,
    are asked only then, see the module doc)."""
    p = Plausibility(depth_mm, ref_depth_mm, endplates)
    reasons = []
    if would_grade and heights_mm is not None and corner_only(*heights_mm):
        front, middle, back = heights_mm
        reasons.append(f"only the front corner is short (heights {front:.0f}, {middle:.0f} "
                       f"and {back:.0f} mm front to back: the middle as high as the back, "
                       "as no wedge is): an osteophyte, a limbus or the segmentation; "
                       "not graded")
    if not p.depth_plausible:
        reasons.append(f"the body measures {depth_mm:.0f} mm front to back against "
                       f"{ref_depth_mm:.0f} mm for its neighbours: its segmentation is "
                       "incomplete; not graded")
    if would_grade and not p.endplates_seen:
        band, endplate, step = endplates.weakest()
        if (band, endplate) in endplates.scan_ends:
            reasons.append(f"the scan ends beyond the {endplate} endplate at the {band} part "
                           "of the body: the body may be cut; not graded")
        else:
            reasons.append(f"the {endplate} endplate is not seen on the CT at the {band} "
                           f"part of the body (bone-to-disc step {step:.0f} HU, at least "
                           f"{ENDPLATE_STEP_MIN_HU:.0f} HU expected): the height loss may "
                           "be the segmentation's; not graded")
    return Plausibility(depth_mm, ref_depth_mm, endplates, tuple(reasons))
