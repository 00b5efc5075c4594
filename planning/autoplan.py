"""Automatic transpedicular trajectories: a bilateral needle pair per level, checked.

For each level the planner measures both pedicles (`planning.anatomy.pedicles`) and, per
side, searches a small set of straight paths around the textbook one: through the pedicle
isthmus (offsets within it), tip in the anterior third of the body a few millimetres from
the midline on the same side (offsets in depth, height and distance from the midline). The
entry is where the path leaves the vertebra behind the isthmus: the posterior cortex where
the pedicle projects. The chosen path maximises the smallest of two clearances, both from
the needle's surface: to the pedicle walls (inside the bone) and to the spinal canal beyond
the 2 mm caution margin, and to any contrast-filled vessel beyond its 5 mm caution distance.
Candidates are scored on the check context's signed-distance
fields, all at once; those that keep the canal margin (on an automatic anatomy the wall's
measured uncertainty where the path passes, `planning.canal_margin`) go first, the best then
through `planning.checks.check`, and a path whose check says unsafe is never proposed, nor
one the checks call atypical or parapedicular, nor one whose tip the image shows within
3 mm of a cortex ahead (a proposal is a textbook transpedicular path;
the checks' image evidence — contrast-filled vessels, bone all around the tip — makes a
path near a vessel or with its tip at the bone's edge unsafe, hence never proposed).

Fallbacks, each said in words in the proposal's notes: a pedicle narrower than the needle
(or without a safe path) gets the next thinner gauge (11G → 13G → 15G); a side with no safe
path at any gauge turns the level into a unipedicular one (one needle from the other side,
tip at the midline); a level with neither is left out, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import find_objects

from planning.anatomy.model import Anatomy
from planning.anatomy.pedicles import PedicleError, PedicleGeometry, measure_pedicle
from planning.canal_margin import CanalMargin
from planning.checks import CheckContext, CheckResult, LevelLandmarks, Status, check
from planning.clearance import COARSE_ERROR_MM, SignedDistance
from planning.plan import GAUGES, Plan, Side, Trajectory
from planning.plan import gauge as lookup_gauge
from planning.progress import Progress, no_progress
from planning.volume import Volume

FloatArray = NDArray[np.float64]

NOT_PROPOSED_BY_DEFAULT = {
    # sacroplasty goes in along the sacral ala or the long axis, not through a pedicle; a
    # transpedicular S1 path is proposed only when S1 is asked for by name
    "S1": "the sacrum is not planned automatically (sacroplasty takes other approaches); "
          "ask for S1 by name to plan it through its pedicles",
}
ISTHMUS_OFFSETS = (-0.2, 0.0, 0.2)  # of the isthmus width / height, around its centre
TIP_DEPTHS = (0.62, 0.70, 0.78)  # of the body's front-to-back span (0 back, 1 front)
TIP_HEIGHTS_MM = (-3.0, 0.0, 3.0)  # about the body centroid, along the local superior axis
BILATERAL_MIDLINE_MM = (3.5, 5.0, 6.5)  # tip from the midline, on the needle's own side
LATERAL_MIDLINE_MM = (9.0, 12.0)  # a side's fallback, before the other side's midline tip
# Why: where the canal's lateral recess is wide at the pedicle's base (lower lumbar levels,
# and a soft recess that the wall's uncertainty widens), every path from the isthmus to a
# tip within 6.5 mm of the midline crossed it, and the level lost its pair. A tip 9–12 mm
# out, still deep in the body, keeps the pair; tried only where the textbook tips fail, so
# the plan keeps its convergent paths wherever they are safe.
UNIPEDICULAR_MIDLINE_MM = (-1.5, 0.0, 1.5)  # + = the needle's own side
NOMINAL_DEPTH, NOMINAL_MIDLINE_MM = 0.70, 5.0  # preferred: 70 % deep, 5 mm (bilateral)
TIP_MIN_DEPTH_MM = 3.5  # tip's surface at least this far inside the vertebra's surface
ENTRY_SEARCH_MM = 45.0  # the posterior cortex is looked for this far behind the isthmus
ENTRY_STEP_MM = 0.5
PATH_SAMPLES = 48  # points along each candidate, entry to tip (≤ 1.6 mm apart)
PREFER_NOMINAL_MM = 0.15  # score handicap per unit of offset: ties go to the textbook path
EXACT_CANDIDATES = 32  # best candidates on the coarse grids that are measured exactly
TRIES_PER_GAUGE = 4  # best-scored candidates sent through `check` before giving up a gauge


@dataclass(frozen=True)
class Proposal:
    """An automatic plan and, per (level, side), why it is what it is.

    ``notes`` holds one sentence per planned or refused needle; ``omitted`` the levels
    left out and why; ``results`` the check of every proposed trajectory (none unsafe).
    """

    plan: Plan
    notes: dict[tuple[str, Side], str] = field(default_factory=dict)
    omitted: dict[str, str] = field(default_factory=dict)
    results: dict[tuple[str, Side], CheckResult] = field(default_factory=dict)


@dataclass(frozen=True)
class _Candidates:
    """Scored straight paths for one side and gauge, best first (LPS mm)."""

    entry_lps: FloatArray  # (N, 3)
    tip_lps: FloatArray  # (N, 3)
    score_mm: FloatArray  # (N,) the smallest clearance (see module docstring)
    canal_mm: FloatArray
    wall_mm: FloatArray


def propose(
    volume: Volume,
    anatomy: Anatomy,
    ctx: CheckContext,
    levels: list[str] | None = None,
    gauge: str = "11G",
    progress: Progress | None = None,
    *,
    pedicles: dict[str, dict[Side, PedicleGeometry]] | None = None,
) -> Proposal:
    """Propose transpedicular trajectories for ``levels`` (by default all levels of the
    anatomy but those in `NOT_PROPOSED_BY_DEFAULT`, which go to ``omitted`` with the
    reason), starting with ``gauge``; see the module docstring for the fallbacks.

    ``pedicles`` replaces the measurement of the pedicles it holds (e.g. ones the user
    corrected); the others are measured from ``anatomy``.

    On an automatically found canal a proposal keeps the clearance its wall's measured
    uncertainty asks for where the path passes (`planning.canal_margin`); an imported
    canal is trusted as drawn.

    Raises `planning.errors.Cancelled` if ``progress`` is cancelled between levels.
    """
    progress = progress or no_progress()
    first = lookup_gauge(gauge)
    gauges = [g for g in sorted(GAUGES.values(), key=lambda g: -g.outer_diameter_mm)
              if g.outer_diameter_mm <= first.outer_diameter_mm]
    notes: dict[tuple[str, Side], str] = {}
    omitted: dict[str, str] = {}
    if levels is None:
        names = [n for n in anatomy.levels if n not in NOT_PROPOSED_BY_DEFAULT]
        omitted.update({n: f"{n}: {NOT_PROPOSED_BY_DEFAULT[n]}" for n in anatomy.levels
                        if n in NOT_PROPOSED_BY_DEFAULT})
    else:
        names = list(levels)
    chosen: list[Trajectory] = []
    boxes = find_objects(anatomy.labels)  # one pass over the labels for every pedicle
    margin = ctx.canal_margin
    if margin is not None and margin.coarse is not None:  # `planning.anatomy.resolution`
        omitted.update({n: f"{n}: not proposed automatically: {margin.coarse}; place the "
                           "needles by hand (the checks still run) or load a thin-slice "
                           "reconstruction" for n in names})
        names = []
    for n, level in enumerate(names):
        progress.report(n, len(names), f"Planning {level}")
        lm = ctx.landmarks.get(level)
        if lm is None:
            omitted[level] = f"{level} is not a vertebra found in this CT's anatomy"
            continue
        given = (pedicles or {}).get(level, {})
        planner = _LevelPlanner(anatomy, ctx, lm, [g.name for g in gauges], boxes, given,
                                margin)
        trajectories, level_notes, reason = planner.plan()
        notes.update(level_notes)
        chosen.extend(trajectories)
        if reason:
            omitted[level] = reason
    progress.report(len(names), len(names), "Checking the proposal")
    plan = Plan(
        study_uid=volume.study_uid,
        series_uid=volume.series_uid,
        frame_of_reference_uid=volume.frame_of_reference_uid,
        trajectories=tuple(chosen),
    )
    results: dict[tuple[str, Side], CheckResult] = {}
    kept = []
    for t in plan.trajectories:
        res = check(t, ctx, plan)
        if res.status is Status.UNSAFE:  # only the pair check can add this now
            notes[t.key] = f"{t.label}: left out: " + "; ".join(res.reasons)
            continue
        results[t.key] = res
        kept.append(t)
    if len(kept) != len(plan.trajectories):
        plan = Plan(plan.study_uid, plan.series_uid, plan.frame_of_reference_uid, tuple(kept))
    return Proposal(plan=plan, notes=notes, omitted=omitted, results=results)


class _LevelPlanner:
    """Both sides of one level, with the gauge and unipedicular fallbacks."""

    def __init__(
        self,
        anatomy: Anatomy,
        ctx: CheckContext,
        lm: LevelLandmarks,
        gauges: list[str],
        boxes: list[tuple[slice, ...] | None],
        given: dict[Side, PedicleGeometry],
        margin: CanalMargin | None = None,
    ) -> None:
        self.anatomy, self.ctx, self.lm, self.gauges = anatomy, ctx, lm, gauges
        self.boxes, self.given, self.margin = boxes, given, margin
        self.level = lm.geometry.name
        self._last_refusal = ""  # why the best candidate of the last gauge was refused
        self._side_refusal = ""  # …and of the first gauge refused in the last `_side` call

    def plan(self) -> tuple[list[Trajectory], dict[tuple[str, Side], str], str]:
        notes: dict[tuple[str, Side], str] = {}
        pedicles: dict[Side, PedicleGeometry] = {}
        found: dict[Side, Trajectory] = {}
        for side in (Side.LEFT, Side.RIGHT):
            try:
                pedicles[side] = self.given.get(side) or measure_pedicle(
                    self.anatomy, self.level, side, boxes=self.boxes
                )
            except PedicleError as exc:
                notes[(self.level, side)] = str(exc)
                continue
            t, text = self._side(pedicles[side], BILATERAL_MIDLINE_MM, NOMINAL_MIDLINE_MM)
            if t is None:  # a less convergent path, before giving up the pair
                refusal = self._side_refusal
                lateral, why = self._side(pedicles[side], LATERAL_MIDLINE_MM,
                                          LATERAL_MIDLINE_MM[0])
                if lateral is not None:
                    best = f" (the best one: {refusal})" if refusal else ""
                    t, text = lateral, (f"{why}; a tip nearer the midline (within "
                                        f"{BILATERAL_MIDLINE_MM[-1]:.1f} mm) had no safe "
                                        f"path{best}")
            notes[(self.level, side)] = text
            if t is not None:
                found[side] = t
        if len(found) == 2:
            return [found[Side.LEFT], found[Side.RIGHT]], notes, ""
        if not pedicles:
            return [], notes, f"{self.level}: neither pedicle could be measured"
        # unipedicular: the better (wider) measured pedicle, tip at the midline
        for side in sorted(pedicles, key=lambda s: -pedicles[s].isthmus_width_mm):
            t, text = self._side(pedicles[side], UNIPEDICULAR_MIDLINE_MM, 0.0)
            other = Side.RIGHT if side is Side.LEFT else Side.LEFT
            if t is not None:
                why = notes.get((self.level, other), "")
                notes[(self.level, side)] = (
                    f"unipedicular from the {side.value}, tip at the midline, because the "
                    f"{other.value} side has no safe path ({why}); {text}"
                )
                return [t], notes, ""
        if found:
            side, t = next(iter(found.items()))
            notes[(self.level, side)] += (
                "; one needle only: no safe path from the other side and none from this side"
                " to the midline"
            )
            return [t], notes, ""
        return [], notes, f"{self.level}: no safe path through either pedicle at any gauge"

    def _side(
        self, ped: PedicleGeometry, midline_mm: tuple[float, ...], preferred_mm: float
    ) -> tuple[Trajectory | None, str]:
        """The best safe trajectory for one side, trying thinner gauges; and its note.
        Why the best path of the first gauge refused was refused is kept in
        ``self._side_refusal`` (the gist of the note, which repeats it for every gauge)."""
        said: list[str] = []
        self._side_refusal = ""
        fallback: tuple[Trajectory, str] | None = None
        for name in self.gauges:
            od = GAUGES[name].outer_diameter_mm
            if ped.isthmus_width_mm < od:
                said.append(
                    f"the pedicle isthmus is {ped.isthmus_width_mm:.1f} mm wide, "
                    f"narrower than a {name} needle ({od:.2f} mm)"
                )
                continue
            cands = self._candidates(ped, GAUGES[name].radius_mm, midline_mm, preferred_mm)
            if cands is None:
                said.append(f"no {name} path stays in the bone from the pedicle to the body")
                continue
            result = self._first_safe(ped, name, cands)
            if result is None:
                why = f" (the best one: {self._last_refusal})" if self._last_refusal else ""
                self._side_refusal = self._side_refusal or self._last_refusal
                said.append(f"every {name} path the search tried checks unsafe"
                            + (" or passes the automatically found canal nearer than its "
                               "wall's uncertainty allows" if self.margin is not None else "")
                            + why)
                continue
            t, res, i = result
            text = self._describe(ped, t, res, cands, i)
            if not res.wall_breaches:
                return t, "; ".join([*said, text])
            said.append(f"{name} breaches the {res.wall_breaches[0].wall} pedicle wall")
            if fallback is None:
                fallback = (t, text)
        if fallback is not None:
            return fallback[0], "; ".join([*said, "kept the first gauge that fits: " + fallback[1]])
        return None, f"{ped.side.value.capitalize()} {self.level}: " + "; ".join(said)

    def _first_safe(
        self, ped: PedicleGeometry, gauge_name: str, cands: _Candidates
    ) -> tuple[Trajectory, CheckResult, int] | None:
        self._last_refusal = ""
        for i in range(min(TRIES_PER_GAUGE, len(cands.score_mm))):
            t = Trajectory(
                self.level, ped.side, cands.entry_lps[i], cands.tip_lps[i], gauge_name,
                note="automatic",
            )
            res = check(t, self.ctx)
            refusal = self._refusal(t, res)
            if not refusal:
                return t, res, i
            if i == 0:
                self._last_refusal = refusal
        return None

    def _refusal(self, t: Trajectory, res: CheckResult) -> str:
        """Why a checked candidate is not proposed, in words ("" when it is fine)."""
        if res.status is Status.UNSAFE:
            return "; ".join(r.split(": ", 1)[-1] for r in res.reasons[:2])
        if res.canal_margin is not None and not res.canal_margin.kept:
            return res.canal_margin.describe()
        if res.approach != "transpedicular":
            return f"{res.approach} path"
        warn = self.ctx.limits.anterior_cortex_warn_mm
        if res.tip_bone_ahead_mm is not None and res.tip_bone_ahead_mm < warn:
            return f"the CT shows the cortex {res.tip_bone_ahead_mm:.1f} mm ahead of the tip"
        if res.tip_dense:
            return (f"the CT shows dense bone at the tip ({res.tip_hu:.0f} HU against "
                    f"{res.tip_behind_hu:.0f} HU behind it)")
        if res.tip_between_plates:
            return (f"the CT shows dense plates {res.tip_plates_gap_mm:.1f} mm apart above "
                    "and below the tip (a disc)")
        return ""

    def _describe(
        self, ped: PedicleGeometry, t: Trajectory, res: CheckResult, c: _Candidates, i: int
    ) -> str:
        what = "pedicle wall" if c.wall_mm[i] <= c.canal_mm[i] - 2.0 else "spinal canal"
        depth = res.tip_depth_fraction if res.tip_depth_fraction is not None else float("nan")
        status = res.status.value
        extra = f" ({'; '.join(r.split(': ', 1)[-1] for r in res.reasons)})" if res.reasons else ""
        border = ""
        if (at := res.canal_margin) is not None:
            border = (f" (tightest against the wall's uncertainty: {at.clearance_mm:.1f} mm "
                      f"where {at.needed_mm:.1f} mm are needed, the wall there "
                      f"{'soft tissue' if at.soft_wall else 'bone'}, uncertain by "
                      f"{at.uncertainty_mm:.1f} mm)")
        return (
            f"{t.label}: {t.gauge} through the pedicle isthmus "
            f"({ped.isthmus_width_mm:.1f} × {ped.isthmus_height_mm:.1f} mm), tip "
            f"{depth:.0%} deep in the body and {res.tip_to_midline_mm:.1f} mm from the midline; "
            f"canal clearance {res.canal_clearance_mm:.1f} mm{border}, closest limit the {what}; "
            f"{status}{extra}"
        )

    def _candidates(
        self, ped: PedicleGeometry, radius_mm: float, midline_mm: tuple[float, ...],
        preferred_mm: float,
    ) -> _Candidates | None:
        """All candidate paths, scored on the signed-distance fields, best first; None
        when no candidate keeps its tip in the body and its path in this vertebra."""
        geo, lm, ctx = self.lm.geometry, self.lm, self.ctx
        sign = ped.side.lps_sign
        off = np.array(ISTHMUS_OFFSETS)
        dv, dw = np.meshgrid(off * ped.isthmus_width_mm, off * ped.isthmus_height_mm)
        through = (
            ped.isthmus_lps
            + dv.reshape(-1, 1) * ped.transverse_lps
            + dw.reshape(-1, 1) * ped.vertical_lps
        )
        b_lo, b_hi = lm.body_ap_range_mm
        f, lat, z = np.meshgrid(TIP_DEPTHS, midline_mm, TIP_HEIGHTS_MM, indexing="ij")
        tip_local = np.stack(
            [sign * lat.ravel(), b_lo + f.ravel() * (b_hi - b_lo), z.ravel()], axis=1
        )
        tips = geo.centroid_lps + tip_local @ geo.frame_rows
        n_t, n_p = len(through), len(tips)
        p = np.repeat(through, n_p, axis=0)
        tip = np.tile(tips, (n_t, 1))
        nominal = (
            np.repeat(np.abs(dv.ravel()) / ped.isthmus_width_mm
                      + np.abs(dw.ravel()) / ped.isthmus_height_mm, n_p)
            + np.tile(np.abs(f.ravel() - NOMINAL_DEPTH) * 5.0
                      + np.abs(lat.ravel() - preferred_mm) / 3.0
                      + np.abs(z.ravel()) / 6.0, n_t)
        )
        d = tip - p
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        # the entry: the last point of this vertebra behind the isthmus, along the path
        s = np.arange(0.0, ENTRY_SEARCH_MM, ENTRY_STEP_MM)
        back = p[:, None, :] - s[None, :, None] * d[:, None, :]
        code = geo.code
        inside = ctx.label_at(back.reshape(-1, 3)).reshape(len(p), len(s)) == code
        leaves = ~inside
        has_exit = leaves.any(axis=1) & inside[:, 0]
        first_out = np.argmax(leaves, axis=1)
        entry = p - (s[np.maximum(first_out - 1, 0)])[:, None] * d
        # samples from the entry to the tip
        t = np.linspace(0.0, 1.0, PATH_SAMPLES)
        path = entry[:, None, :] + t[None, :, None] * (tip - entry)[:, None, :]
        flat = path.reshape(-1, 3)
        codes = ctx.label_at(flat).reshape(len(p), PATH_SAMPLES)
        in_vertebra = (codes == code).all(axis=1)
        tip_flat, tip_ok = ctx.voxel_lookup(tip)
        in_body = tip_ok & ctx.anatomy.bodies.ravel()[tip_flat]
        ap = (flat - geo.centroid_lps) @ geo.anterior_lps
        lo, hi = lm.canal_ap_range_mm
        in_pedicle = ((ap >= lo) & (ap <= hi)).reshape(len(p), PATH_SAMPLES)
        valid = has_exit & in_vertebra & in_body & in_pedicle.any(axis=1)
        # the tip deep enough in the bone, measured exactly for every candidate (one point
        # each): left to the best-ranked few, it could leave none when the canal's soft
        # border pushes the ranking towards shallow tips
        valid &= -lm.walls.refined_many(tip)[0] - radius_mm >= TIP_MIN_DEPTH_MM
        if not valid.any():
            return None
        # rank every candidate on the coarse grids (microseconds), then measure the best
        # ones exactly: KD-tree queries for all of them would cost ten times as much
        limit = ctx.limits.canal_caution_mm
        wall_c = lm.walls.approximate(flat).reshape(len(p), PATH_SAMPLES)
        if self.margin is not None:  # what the margin leaves, on the caution distance
            canal_c = (self.margin.slack_rough(flat) + limit).reshape(len(p), PATH_SAMPLES)
        else:
            canal_c = ctx.canal.approximate(flat).astype(np.float64).reshape(len(p), PATH_SAMPLES)
        rough = np.minimum(
            np.where(in_pedicle, -wall_c, np.inf).min(axis=1), canal_c.min(axis=1) - limit
        ) - PREFER_NOMINAL_MM * nominal
        vessels = ctx.evidence.vessel_field if ctx.evidence is not None else None
        vessel_limit = ctx.limits.vessel_caution_mm + radius_mm
        if vessels is not None:  # away from contrast-filled vessels too
            vessel_c = vessels.approximate(flat).reshape(len(p), PATH_SAMPLES)
            rough = np.minimum(rough, vessel_c.min(axis=1) - vessel_limit)
        rough[~valid] = -np.inf
        keep = np.argsort(-rough, kind="stable")[: min(EXACT_CANDIDATES, int(valid.sum()))]
        sub = path[keep].reshape(-1, 3)
        wall_d = lm.walls.refined_many(sub)[0].reshape(len(keep), PATH_SAMPLES)
        if self.margin is not None:
            slack = self.margin.slack_paths(path[keep], radius_mm)
            canal_mm = slack + limit
        else:
            canal_mm = _path_minimum(ctx.canal, path[keep]) - radius_mm
            slack = canal_mm
        wall_mm = np.where(in_pedicle[keep], -wall_d, np.inf).min(axis=1) - radius_mm
        entry, tip, nominal = entry[keep], tip[keep], nominal[keep]
        score = np.minimum(wall_mm, canal_mm - limit) - PREFER_NOMINAL_MM * nominal
        if vessels is not None:
            score = np.minimum(score, _path_minimum(vessels, path[keep]) - vessel_limit)
        # those that keep the margin first: where every path breaches a wall, the score
        # ranks by the wall alone and would try only paths too near the canal
        order = np.lexsort((-score, slack < 0.0))
        return _Candidates(entry[order], tip[order], score[order], canal_mm[order],
                           wall_mm[order])


def _path_minimum(field: SignedDistance, paths_lps: FloatArray) -> FloatArray:
    """Smallest signed distance along each of (N, S, 3) sampled paths, mm: exact at the
    samples where the coarse grid says the minimum can be (within its error of the
    smallest), as `planning.clearance.min_along_segment` does for one path."""
    n, m, _ = paths_lps.shape
    flat = paths_lps.reshape(-1, 3)
    approx = field.approximate(flat).reshape(n, m)
    near = approx <= approx.min(axis=1, keepdims=True) + COARSE_ERROR_MM
    exact = np.full((n, m), np.inf)
    exact[near] = field.refined_many(flat[near.ravel()])[0]
    return np.asarray(exact.min(axis=1), dtype=np.float64)
