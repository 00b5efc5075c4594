"""The report's simulated fluoroscopy pictures: a DRR of one C-arm view with the needles'
shadows in their status colours, the patient's directions at the edges, the C-arm angles
and a scale bar true at the isocentre (pure numpy and Pillow).

Why here and not with the slices: a DRR is a projection, not a cut, so its needles are
placed by `planning.fluoro_views.project_needles` and its grey comes from the rays
(`fluoro_window`); only the marks drawn on it are the slices' (`planning.report.report_images`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from planning.carm import PatientPosition
from planning.checks import CheckResult, Status
from planning.drr import AttenuationVolume, DrrGeometry, render_drr, to_display
from planning.fluoro_views import FluoroView, ProjectedNeedle, edge_letters, project_needles
from planning.plan import Side, Trajectory
from planning.report.report_images import (
    SUPERSAMPLE,
    PixelNeedle,
    draw_letters,
    draw_needles,
    draw_scale_bar,
    draw_texts,
    font,
    needle_label,
    to_png,
)
from planning.volume import FloatArray

FLUORO_DRR_PX = 448
"""Side of a report DRR in pixels. At the default C-arm set-up the renderer then traces
every 2nd (AP, lateral) or 3rd (working views) ray, ~0.2–0.3 s a view on 2 cores; 384 px
traces every ray of the AP and lateral and costs three times as much (see `render_drr`)."""
FLUORO_TEXT_SCALE = 1.25
"""Text and marks are this much larger than on the slices: three DRRs share the page's width."""
FLUORO_NEEDLE_ALPHA = 255  # metal is opaque on a radiograph: the needle's shadow is solid
FLUORO_VIEW_NAMES: Mapping[str, str] = {
    "ap": "AP", "lateral": "Lateral", "bulls_eye": "Bull's-eye", "progression": "Progression",
}


@dataclass(frozen=True, eq=False)
class FluoroImage:
    """One simulated fluoroscopy view (DRR) with the needles, as the report prints it.

    The PNG's pixels are the DRR's: pixel ``(x, y)`` of the PNG is pixel ``(x, y)`` of
    ``view.geometry``, so ``needles`` (what `project_needles` gave, as drawn) and
    `planning.drr.project_points` locate anything in the picture. ``letters`` are the
    patient directions printed at the edges and ``isocentre_pixel_mm`` the size of a pixel
    at the isocentre (the scale bar's reference).
    """

    png: bytes
    view: FluoroView
    caption: str
    letters: Mapping[str, str]
    needles: tuple[ProjectedNeedle, ...]
    position: PatientPosition
    isocentre_pixel_mm: float


def fluoro_image(
    attenuation: AttenuationVolume,
    view: FluoroView,
    trajectories: Sequence[Trajectory],
    results: Mapping[tuple[str, Side], CheckResult],
    *,
    position: PatientPosition = "prone",
) -> FluoroImage:
    """The DRR of one view with the needles' shadows, letters, angles and a scale bar.

    Parameters
    ----------
    attenuation
        The CT as attenuation (`AttenuationVolume.from_volume`): built once, used for every
        view of the report.
    view
        The C-arm view (`planning.fluoro_views`); its geometry sets the image's size.
    trajectories, results
        The needles to draw, in the colour of their check result (grey without one) and
        labelled "L2 L"; a needle seen end-on (its bull's-eye view) is a ring round a dot.
    position
        How the patient lies, as the views were made for (stated in the picture and the
        caption: the C-arm angles mean nothing without it).
    """
    g = view.geometry
    s = float(SUPERSAMPLE)
    big_size = (g.width_px * SUPERSAMPLE, g.height_px * SUPERSAMPLE)
    drr = render_drr(attenuation, g)
    grey = to_display(drr, window=fluoro_window(drr))
    base = Image.fromarray(grey, mode="L").resize(big_size, Image.Resampling.BICUBIC)
    base = base.convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    t = s * FLUORO_TEXT_SCALE  # canvas pixels per nominal pixel, for text and marks
    letters = edge_letters(g)
    taken = draw_letters(draw, letters, *big_size, t)
    pad = 8 * t
    taken += draw_texts(draw, [
        ((pad, pad), FLUORO_VIEW_NAMES.get(view.kind, view.title), font(14 * t), "lt"),
        *(((pad, pad + (19 + 16 * n) * t), line, font(12 * t, bold=False), "lt")
          for n, line in enumerate(view.setting.tags(view.convention))),
        ((pad, big_size[1] - pad), f"Patient {position}", font(12 * t, bold=False), "lb"),
    ], t, backing=True)
    iso_pixel_mm = g.pixel_mm / view.magnification
    taken.append(draw_scale_bar(draw, iso_pixel_mm / s, *big_size, t, "at isocentre"))

    projected = project_needles(view, trajectories)
    def on_canvas(xy: tuple[float, float]) -> FloatArray:  # pixel centres at integers
        return (np.asarray(xy, dtype=np.float64) + 0.5) * s - 0.5

    # labelled "L2 L" only: a canal clearance means nothing on a projection
    drawn = [PixelNeedle(p.trajectory, _status(results.get(p.trajectory.key)),
                         on_canvas(p.entry_px), on_canvas(p.tip_px),
                         max(p.radius_px * s, 1.5 * s), _depth_mm(g, p.trajectory),
                         needle_label(p.trajectory, None))
             for p in projected]
    draw_needles(draw, drawn, big_size, taken, t, FLUORO_NEEDLE_ALPHA)
    return FluoroImage(
        png=to_png(base, overlay, (g.width_px, g.height_px)),
        view=view,
        caption="\n".join(view.caption_lines),
        letters=letters,
        needles=tuple(projected),
        position=position,
        isocentre_pixel_mm=iso_pixel_mm,
    )


def fluoro_images(
    attenuation: AttenuationVolume,
    trajectories: Sequence[Trajectory],
    results: Mapping[tuple[str, Side], CheckResult],
    views: Sequence[FluoroView],
    *,
    position: PatientPosition = "prone",
) -> list[FluoroImage]:
    """`fluoro_image` of each view, in order (e.g. `planning.fluoro_views.plan_views`)."""
    return [fluoro_image(attenuation, v, trajectories, results, position=position)
            for v in views]


def fluoro_window(drr: NDArray[np.float32]) -> tuple[float, float]:
    """The (white, black) line integrals the report shows a DRR with: the 1st and 99.5th
    percentiles of the rays through the patient.

    Why not `to_display`'s default (white = no attenuation): every ray of a 20 cm working
    view crosses the whole trunk, and bone adds only ~15 % to a ray's integral, so the
    picture came out uniformly dark with the vertebrae barely visible. Spreading the grey
    over the rays actually in the view does what a C-arm's automatic brightness and
    contrast do; where air is in the field the low end stays near 0 as before.
    """
    hit = drr[drr > 1e-6]
    if not hit.size:
        return (0.0, 1.0)
    low, high = (float(v) for v in np.percentile(hit, [1.0, 99.5]))
    return (low, high) if high > low else (0.0, max(high, 1e-6))


def _depth_mm(geometry: DrrGeometry, t: Trajectory) -> float:
    """How far the needle's middle is from the source along the beam: the needle nearer the
    detector (the viewer's side) is drawn on top of one further away."""
    return float(((t.entry + t.target) / 2 - geometry.source_lps) @ geometry.normal_lps)


def _status(result: CheckResult | None) -> Status | None:
    return None if result is None else result.status
