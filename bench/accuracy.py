"""Accuracy of the automatic anatomy, fracture grades and plans over a family of CTs.

Why: an algorithm tuned until two CTs come out right has learned those two CTs. Every
labelled real CT in ../shared/data (found by its README and `labels.nii.gz`; the label
table named in the README) is run as stored *and* re-stored many ways — rotated grids,
other spacings, flipped storage on each axis, sagittal and coronal storage, crops to three
levels and through a vertebra, a cut-out around one vertebra without skin, as
uncompressed and JPEG 2000 DICOM series, a 40 mm crop of 2 mm slices
(`bench.accuracy_storings`) — and as a phantom painted from its labels (with contrast
vessels and a table), whose truth is exact. The truth moves with the patient: the label map
is resampled through LPS onto each re-storing (`anatomy_from_label_map`).

Per case it prints: levels found once each, split and missed vertebrae, names right, body
centroid error, canal surface distance to the reference canal (mean and 95th percentile),
Genant grades ≥ 1 and ≥ 2 of the intact vertebrae (false), whether the fractured ones
(`FRACTURED`: VerSe's L1, a wedge; nothing else in these CTs) were graded, and the
automatic plan: needles, needles within 1 mm of the reference canal, tips
outside their vertebra, and the clearance the checks report against the reference one.
Then a summary line per metric over everything.

`python -m bench accuracy` runs the whole family (minutes); `--fast` a few re-storings per
CT (what `tests/planning/test_accuracy.py` runs in `make test`).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.accuracy_pairs import count_pairs
from bench.accuracy_storings import (  # noqa: F401  (re-exported: tests make storings too)
    bent,
    bent_labels,
    flipped,
    respaced,
    rotated,
    storings,
)
from planning.anatomy.from_ct import anatomy_from_ct
from planning.anatomy.from_labels import anatomy_from_label_map
from planning.anatomy.label_tables import TOTALSEGMENTATOR, VERSE, LabelTable
from planning.anatomy.model import LOW_NAME_CONFIDENCE, Anatomy, BoolArray
from planning.anatomy.spine_column import BONE_HU
from planning.assessment.fracture import (
    SHAPE_BICONCAVE,
    SHAPE_CRUSH,
    SHAPE_WEDGE,
    assess_fractures,
)
from planning.autoplan import propose
from planning.checks import CheckContext
from planning.clearance import SignedDistance, min_along_segment
from planning.demo.painted import paint_from_labels
from planning.demo.painted_fracture import PaintedFracture, fractured_labels
from planning.errors import VertebroPlanError
from planning.grid_lookup import nearest_voxels
from planning.io.nifti import load_nifti
from planning.volume import Volume

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FRACTURED: dict[str, dict[str, tuple[int, str]]] = {
    # read by eye on the midline sagittal and measured on the manual labels: L1's body is
    # a wedge, 17 mm high in front against 24 mm at the back (Genant 2, 32 %), with a dense
    # band across it; every other body of these CTs is intact
    "ct-verse012-sagittal": {"L1": (2, SHAPE_WEDGE)},
}
PAINTED_FRACTURES = ((SHAPE_WEDGE, 0.35), (SHAPE_BICONCAVE, 0.30), (SHAPE_CRUSH, 0.45))
MATCH_MM = 15.0  # an automatic level is the truth level whose body centre is this near
NEAR_CANAL_MM = 1.0
BEND_MM = 20.0  # `bent`: the middle of the spine moved sideways this far


@dataclass
class CaseResult:
    """The figures of one CT storing (see the module docstring)."""

    name: str
    truth_levels: int = 0
    found_once: int = 0
    split: int = 0
    missed: int = 0  # of the vertebrae wholly in view (the target)…
    missed_cut: int = 0  # …and of those the scan's edge cuts (here or in the original CT)
    extra: int = 0
    names_right: int = 0
    misnamed_sure: int = 0  # a wrong name *not* marked uncertain: the never-event
    centroid_mm: list[float] = field(default_factory=list)
    canal_mean_mm: float = float("nan")
    canal_p95_mm: float = float("nan")
    genant1: int = 0
    genant2: int = 0  # on vertebrae that are not fractured (`FRACTURED`): false
    graded: int = 0
    fractures: int = 0  # fractured vertebrae (`FRACTURED`, painted) found once here…
    fractures_found: int = 0  # …of them graded Genant ≥ 1…
    fractures_graded_right: int = 0  # …within one grade of the truth, with its shape
    needles: int = 0
    unverified: int = 0  # needles at a vertebra the labels do not hold
    near_canal: int = 0
    tips_outside: int = 0
    pair_levels: int = 0  # matched once, body not cut by the scan's edge (`accuracy_pairs`)…
    paired: int = 0  # …of them with a needle on each side…
    unpaired: Counter[str] = field(default_factory=Counter)  # …and why the others have not
    clearance_error_mm: list[float] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""


def table_from_readme(folder: Path) -> LabelTable | None:
    """The label table a data folder's README names (TotalSegmentator or VerSe)."""
    readme = folder / "README.md"
    if not readme.exists() or not (folder / "labels.nii.gz").exists():
        return None
    text = readme.read_text(encoding="utf-8", errors="replace")
    if re.search(r"VerSe", text):
        return VERSE
    if re.search(r"TotalSegmentator", text):
        return TOTALSEGMENTATOR
    return None


def labelled_cts(data: Path = DATA) -> list[tuple[str, Path, LabelTable]]:
    """Every labelled CT under ``data``: (name, folder, table)."""
    out = []
    for folder in sorted(p for p in data.glob("*") if p.is_dir()):
        table = table_from_readme(folder)
        if table is not None and (folder / "ct.nii.gz").exists():
            out.append((folder.name, folder, table))
    return out


# ---- the figures of one storing ---------------------------------------------------------
def evaluate(name: str, ct: Volume, labels: Volume, table: LabelTable,
             fractured: dict[str, tuple[int, str]] | None = None,
             cut: frozenset[str] = frozenset(),
             bodies_cut: frozenset[str] = frozenset()) -> CaseResult:
    """Automatic anatomy, fracture grades and plan on ``ct`` against the truth from
    ``labels`` (on any grid); ``fractured`` gives the truly fractured vertebrae (truth
    names) with their Genant grade and shape: their grades are detections, not false
    positives. ``cut`` names the vertebrae the original scan's edge cuts (`cut_by_edge`);
    with those this storing's own edge cuts, a miss of them is counted apart.
    ``bodies_cut`` names those whose *body* the original scan's edge cuts (`bodies_cut_by_edge`):
    a pair is asked of every other level (its body and so its pedicles in view), a vertebra
    whose spinous process or laminae the edge cuts included, as the issue asks."""
    fractured = fractured or {}
    res = CaseResult(name)
    start = time.perf_counter()
    try:
        truth = anatomy_from_label_map(ct, labels, table)
    except VertebroPlanError as exc:
        res.error = f"no truth: {exc}"
        return res
    res.truth_levels = len(truth.levels)
    try:
        auto = anatomy_from_ct(ct)
    except VertebroPlanError as exc:
        res.error = f"anatomy failed: {exc}"
        res.missed = len(truth.levels)
        return res
    cut = cut | cut_by_edge(ct, Volume(truth.labels, truth.affine_lps), table)
    bodies_cut = bodies_cut | bodies_cut_by_edge(ct, truth, table)
    truth_of = _levels(res, auto, truth, cut)
    matched = set(truth_of)
    reference = reference_canal(ct, truth)
    _canal(res, auto, reference, truth.affine_lps)
    hits = Counter(truth_of.values())
    once = {a: t for a, t in truth_of.items() if hits[t] == 1}
    res.fractures = sum(t in fractured for t in once.values())
    try:
        for level, a in assess_fractures(ct, auto).items():
            if once.get(level) in fractured:
                grade, shape = fractured[once[level]]
                res.fractures_found += (a.genant_grade or 0) >= 1
                res.fractures_graded_right += (a.genant_grade is not None
                                               and abs(a.genant_grade - grade) <= 1
                                               and a.shape == shape)
                continue
            if a.genant_grade is not None:
                res.graded += 1
                res.genant1 += a.genant_grade == 1
                res.genant2 += a.genant_grade >= 2
    except VertebroPlanError:
        pass
    ctx = CheckContext.build(ct, auto)
    proposal = propose(ct, auto, ctx)
    whole = [a for a, t in once.items() if t not in bodies_cut]
    res.pair_levels = len(whole)
    res.paired, res.unpaired = count_pairs(proposal, whole)
    field_ = SignedDistance.build(reference, truth.affine_lps)
    for t in proposal.plan.trajectories:
        if t.level not in matched:  # a vertebra the labels do not hold: no truth for it
            res.unverified += 1
            continue
        res.needles += 1
        ref = min_along_segment(field_, t.entry, t.target)[0] - t.radius_mm
        res.near_canal += ref < NEAR_CANAL_MM
        res.clearance_error_mm.append(proposal.results[t.key].canal_clearance_mm - ref)
        flat, ok = nearest_voxels(truth.index_from_lps, truth.labels.shape, t.target[None])
        res.tips_outside += not (ok[0] and truth.labels.ravel()[flat[0]] > 0)
    res.seconds = time.perf_counter() - start
    return res


def _levels(res: CaseResult, auto: Anatomy, truth: Anatomy,
            cut: frozenset[str] = frozenset()) -> dict[str, str]:
    """Match automatic levels to the truth's by body centre: once each, split, missed.
    Returns the truth name of every automatic level that matched a labelled vertebra."""
    t_names = list(truth.levels)
    t_centres = np.array([truth.levels[n].centroid_lps for n in t_names])
    hits: dict[str, list[str]] = {n: [] for n in t_names}
    for name, g in auto.levels.items():
        d = np.linalg.norm(t_centres - g.centroid_lps, axis=1)
        best = int(np.argmin(d))
        if d[best] <= MATCH_MM:
            hits[t_names[best]].append(name)
            res.centroid_mm.append(float(d[best]))
        else:
            res.extra += 1
    for truth_name, found in hits.items():
        if len(found) == 1:
            res.found_once += 1
            res.names_right += found[0] == truth_name
            res.misnamed_sure += (found[0] != truth_name
                                  and auto.levels[found[0]].confidence >= LOW_NAME_CONFIDENCE)
        elif len(found) > 1:
            res.split += 1
        elif truth_name in cut:
            res.missed_cut += 1
        else:
            res.missed += 1
    return {name: truth_name for truth_name, found in hits.items() for name in found}


def _crop_start(grid_affine: np.ndarray, crop_affine_lps: np.ndarray) -> list[int]:
    """The [k, j, i] index on the grid of ``grid_affine`` of a crop's first voxel (the
    inverse of `crop_affine`)."""
    corner = np.linalg.inv(grid_affine) @ np.append(crop_affine_lps[:3, 3], 1.0)
    return [round(float(c)) for c in corner[:3]][::-1]


def cut_by_edge(grid: Volume, labels: Volume, table: LabelTable) -> frozenset[str]:
    """Names of the vertebrae (``table``'s codes in ``labels``) that reach the top or bottom
    face of ``grid``'s array (the faces across the spine): partly out of view.

    ``labels`` is on ``grid``'s grid or a crop of it (the truth anatomy's labels). A
    re-storing pads the original scan's edge with air, so `evaluate` is given the original
    CT's set as well. Only the faces across the spine count: a transverse process reaching
    the side of a tight sagittal field (VerSe's L2 and L3) leaves the vertebra in view.
    """
    start = _crop_start(grid.affine_lps, labels.affine_lps)
    axis = 2 - int(np.argmax(np.abs(grid.affine_lps[2, :3])))  # the array axis along LPS z
    lo, hi = start[axis], start[axis] + labels.array.shape[axis]
    codes: set[int] = set()
    for index, at_edge in ((0, lo <= 0), (-1, hi >= grid.array.shape[axis])):
        if at_edge:
            codes.update(np.unique(np.take(labels.array, index, axis=axis)).tolist())
    return frozenset(table.levels[c] for c in codes if c in table.levels)


def bodies_cut_by_edge(grid: Volume, truth: Anatomy, table: LabelTable) -> frozenset[str]:
    """Names of the vertebrae whose body (``truth.bodies``) reaches the top or bottom face
    of ``grid``'s array: the levels where a needle's target is partly out of view. The
    pedicles lie beside the body's upper half, so a body in view has its pedicles in view."""
    bodies = np.where(truth.bodies, truth.labels, 0).astype(truth.labels.dtype)
    return cut_by_edge(grid, Volume(bodies, truth.affine_lps), table)


def reference_canal(ct: Volume, truth: Anatomy) -> BoolArray:
    """The reference canal: the one the labels enclose (``truth.canal``), less the voxels
    the CT shows as bone (≥ `BONE_HU`).

    Why: the labels are a few millimetres coarse. TotalSegmentator's, carried onto the
    abdominal CT turned 15° on a 2 mm grid, left a band of the pedicle's medial cortex
    unlabelled, so the canal they enclose reached 1.5–2 mm into that cortex (its edge at
    336–517 HU): a needle running 2.5 mm inside the pedicle, by the image, counted as
    0.2 mm from the canal. Bone is never canal; on the painted phantoms, whose canal is
    painted soft tissue, nothing changes.
    """
    k0, j0, i0 = _crop_start(ct.affine_lps, truth.affine_lps)
    kk, jj, ii = truth.canal.shape
    hu = ct.array[k0:k0 + kk, j0:j0 + jj, i0:i0 + ii]
    if hu.shape != truth.canal.shape:  # the truth is not a crop of this CT's grid
        return np.asarray(truth.canal)
    return np.asarray(truth.canal & (hu < BONE_HU))


def _canal(res: CaseResult, auto: Anatomy, reference: BoolArray, affine_lps: np.ndarray
           ) -> None:
    """Surface distance of the automatic canal to the reference, where both are."""
    if not auto.canal.any() or not reference.any():
        return
    ref = SignedDistance.build(reference, affine_lps)
    mine = SignedDistance.build(auto.canal, auto.affine_lps)
    # both ways, where both canals are (the reference ends with its labelled vertebrae)
    z_ref = ref.points_lps[:, 2]
    z_mine = mine.points_lps[:, 2]
    z_lo, z_hi = max(z_ref.min(), z_mine.min()) + 2.0, min(z_ref.max(), z_mine.max()) - 2.0
    a = mine.points_lps[(z_mine > z_lo) & (z_mine < z_hi)]
    b = ref.points_lps[(z_ref > z_lo) & (z_ref < z_hi)]
    if not len(a) or not len(b):
        return
    d = np.abs(np.concatenate([ref.refined_many(a)[0], mine.refined_many(b)[0]]))
    res.canal_mean_mm, res.canal_p95_mm = float(d.mean()), float(np.percentile(d, 95))


# ---- running the family -------------------------------------------------------------------
def run_family(fast: bool = False, painted: bool = True, data: Path = DATA,
               out: Callable[[str], None] = print, only: set[str] | None = None,
               storing_has: str | None = None) -> list[CaseResult]:
    """Every labelled CT (or those named in ``only``), every storing (and its painted
    phantom; only those whose name holds ``storing_has``, when given): one row each, then
    the summary."""
    results = []
    out("| CT, storing | levels once / truth | split | missed | names right (wrong, not "
        "marked uncertain) | centroid mm "
        "(max) | canal mean / p95 mm | false Genant ≥1 / ≥2 of graded | fractures found | "
        "needles | pairs / levels in view | < 1 mm of canal | tips outside | "
        "clearance error mm (max) | s |")
    out("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, folder, table in labelled_cts(data):
        if only is not None and name not in only:
            continue
        ct = _as_volume(load_nifti(folder / "ct.nii.gz"))
        labels = load_nifti(folder / "labels.nii.gz")
        truth = anatomy_from_label_map(ct, labels, table)
        cut = cut_by_edge(ct, labels, table)
        bodies_cut = bodies_cut_by_edge(ct, truth, table)
        cases: list[tuple[str, Callable[[], Volume]]] = list(storings(ct, truth, fast))
        known = FRACTURED.get(name, {})
        truth_of: dict[str, tuple[Volume, dict[str, tuple[int, str]]]] = {}
        if painted:
            cases.append(("painted phantom (vessels, table)",
                          lambda lb=labels, tb=table: paint_from_labels(lb, tb).ct))
            for fracture in painted_fractures(truth, known):
                storing = (f"painted phantom, {fracture.level} a {fracture.shape} fracture "
                           f"({fracture.loss:.0%})")
                broken = fractured_labels(labels, table, fracture)
                truth_of[storing] = (broken, {**known, fracture.level:
                                              (fracture.grade, fracture.shape)})
                cases.append((storing, lambda lb=broken, tb=table: paint_from_labels(lb, tb).ct))
        if not fast and labels.array.shape == ct.array.shape:  # a bend: its own truth
            storing = f"bent sideways {BEND_MM:.0f} mm (scoliosis-like)"
            truth_of[storing] = (bent_labels(labels, BEND_MM), known)
            cases.append((storing, lambda c=ct: bent(c, BEND_MM)))
        for storing, make in cases:
            if storing_has is not None and storing_has not in storing:
                continue
            case_labels, case_fractured = truth_of.get(storing, (labels, known))
            r = evaluate(f"{name}, {storing}", make(), case_labels, table, case_fractured, cut,
                         bodies_cut)
            results.append(r)
            out(_row(r))
    out(_summary(results))
    return results


def painted_fractures(truth: Anatomy, fractured: dict[str, tuple[int, str]]
                      ) -> list[PaintedFracture]:
    """One fracture of each shape (`PAINTED_FRACTURES`) painted on an intact vertebra of
    this CT, away from the ends of the labelled spine (whose neighbours grade it)."""
    inner = [n for n in list(truth.levels)[1:-1] if n not in fractured and n != "S1"]
    if not inner:
        return []
    picks = [inner[0], inner[len(inner) // 2], inner[-1]]
    return [PaintedFracture(level, shape, loss)
            for level, (shape, loss) in zip(picks, PAINTED_FRACTURES, strict=True)]


def _as_volume(volume: Volume) -> Volume:
    return Volume(volume.array, volume.affine_lps, study_uid="2.25.1", series_uid="2.25.2",
                  frame_of_reference_uid="2.25.3")


def _row(r: CaseResult) -> str:
    if r.error and not r.truth_levels:
        return f"| {r.name} | {r.error} |"
    cen = f"{np.mean(r.centroid_mm):.1f} ({max(r.centroid_mm):.1f})" if r.centroid_mm else "—"
    err = (f"{np.mean(r.clearance_error_mm):+.1f} ({max(r.clearance_error_mm, key=abs):+.1f})"
           if r.clearance_error_mm else "—")
    return (f"| {r.name} | {r.found_once}/{r.truth_levels} | {r.split} | {r.missed}"
            + (f" (+{r.missed_cut} cut by the edge)" if r.missed_cut else "") + " | "
            f"{r.names_right}/{r.found_once} ({r.misnamed_sure}) | {cen} | {r.canal_mean_mm:.1f} / "
            f"{r.canal_p95_mm:.1f} | {r.genant1} / {r.genant2} of {r.graded} | "
            + (f"{r.fractures_found}/{r.fractures} ({r.fractures_graded_right} right)"
               if r.fractures else "—")
            + f" | {r.needles}"
            + (f" (+{r.unverified} at unlabelled vertebrae)" if r.unverified else "")
            + f" | {r.paired}/{r.pair_levels}"
            + f" | {r.near_canal} | {r.tips_outside} | {err} | {r.seconds:.1f}"
            + (f" ({r.error})" if r.error else "") + " |")


def _summary(results: list[CaseResult]) -> str:
    levels = sum(r.truth_levels for r in results)
    once = sum(r.found_once for r in results)
    canal = [r.canal_mean_mm for r in results if np.isfinite(r.canal_mean_mm)]
    p95 = [r.canal_p95_mm for r in results if np.isfinite(r.canal_p95_mm)]
    errors = [e for r in results for e in r.clearance_error_mm]
    return "\n".join([
        f"\n**Summary over {len(results)} storings**",
        f"- levels found once: {once} of {levels}; split {sum(r.split for r in results)}, "
        f"missed {sum(r.missed for r in results)} wholly in view and "
        f"{sum(r.missed_cut for r in results)} cut by the scan's edge, "
        f"extra {sum(r.extra for r in results)}",
        f"- names right: {sum(r.names_right for r in results)} of {once}; wrong and not "
        f"marked uncertain: {sum(r.misnamed_sure for r in results)}",
        f"- canal surface distance: mean ≤ 1 mm in {sum(c <= 1.0 for c in canal)} of "
        f"{len(canal)}, p95 ≤ 2 mm in {sum(c <= 2.0 for c in p95)} of {len(p95)}",
        f"- Genant ≥ 2 (false): {sum(r.genant2 for r in results)}; Genant 1: "
        f"{sum(r.genant1 for r in results)} of {sum(r.graded for r in results)} graded "
        "intact vertebrae; fractured vertebrae graded ≥ 1: "
        f"{sum(r.fractures_found for r in results)} of {sum(r.fractures for r in results)}"
        f" (within one grade, shape right: {sum(r.fractures_graded_right for r in results)})",
        f"- needles: {sum(r.needles for r in results)}; within 1 mm of the reference canal: "
        f"{sum(r.near_canal for r in results)}; tips outside a vertebra: "
        f"{sum(r.tips_outside for r in results)}",
        f"- bilateral pairs: {sum(r.paired for r in results)} of "
        f"{sum(r.pair_levels for r in results)} levels in view; the others: "
        + (", ".join(f"{c} {n}" for c, n in
                     sum((r.unpaired for r in results), Counter()).most_common()) or "none"),
        "- reported − reference canal clearance: "
        + (f"mean {np.mean(errors):+.1f} mm, within 1 mm for {np.mean(np.abs(errors) <= 1.0):.0%}"
           if errors else "—"),
    ])


def run() -> dict[str, float]:
    """`make bench`: the whole family."""
    print("\n## Accuracy over every labelled CT and its re-storings")
    results = run_family(fast=False)
    return {"storings": float(len(results))}


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.accuracy")
    parser.add_argument("--fast", action="store_true", help="a few re-storings per CT")
    parser.add_argument("--no-painted", action="store_true", help="leave out the phantoms")
    parser.add_argument("--only", action="append", metavar="CT",
                        help="only this labelled CT (its folder name); may repeat")
    parser.add_argument("--storing", metavar="TEXT",
                        help="only the storings whose name holds TEXT (e.g. 'rotated')")
    args = parser.parse_args()
    run_family(fast=args.fast, painted=not args.no_painted,
               only=set(args.only) if args.only else None, storing_has=args.storing)
