"""Contrast-filled vessels and heart chambers found in the CT itself: never bone.

Why this exists: with intravenous contrast the lumen of the aorta, the vena cava, the azygos
and iliac vessels and the heart's chambers reads 150–500 HU, like cancellous bone and even
like thin cortex. A bone threshold takes them for bone; the aorta lies against the thoracic
and upper lumbar bodies, so a vertebra flooded from its body swallowed the aorta, and
needles were proposed into it (with "tip in the body"). Every mask that means bone, and
every check of a needle, needs to know where blood is, from the image alone.

How: a contrast-filled lumen is a *thick, homogeneous, bright* region that is *not walled
by brighter bone*, and vessels and the heart are *long* (or large) where a vertebral body
is cut short by its discs every 20–35 mm. On an LPS-aligned working grid (`WorkGrid`, 2 mm):

1. Local mean and standard deviation over 3 × 3 voxels across the body axis, after the CT
   is smoothed down to `NOISE_TARGET_HU` (a sharp lung kernel leaves ±100 HU). "Blood" is
   a mean within `BLOOD_HU` whose spread is no more than `HOMOGENEITY_NOISE_FACTOR` × the
   CT's remaining noise (measured in soft tissue), within `HOMOGENEITY_FLOOR_HU` …
   `HOMOGENEITY_CEILING_HU`. Pieces holding the back of a vertebral body (in front of the
   canal) are bone, whatever they look like.
2. One erosion cuts the thin contacts between a lumen and a body that touches it (the
   boundary voxels there are mixed, hence not homogeneous).
3. Each remaining piece is kept as a vessel when it is long (`MIN_LENGTH_MM` along the body
   axis, or the scan's whole length when that is shorter), or large (`MIN_CHAMBER_ML`: heart
   chambers), *and* when less than `MAX_BRIGHT_RIM` of its rim is brighter than its lumen
   (a vertebra's cancellous core is walled by cortex; a vessel touches bone only on one
   side, and a calcified wall is patchy).
4. The kept pieces grow back by the eroded voxel (and one more, a vessel's wall) into voxels
   that are not brighter than the lumen; brighter voxels on the wall are calcium (or a
   stent's metal) on the vessel, flagged as such and never bone.

Without contrast the lumen is 30–60 HU and nothing is found: unenhanced blood is not
confused with bone by any threshold here, so nothing needs excluding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from planning.volume import FloatArray

BLOOD_HU = (130.0, 700.0)
"""Enhanced blood: portal-venous phase ~150 HU, arterial phase up to ~500 HU (the shared
thorax CT's aorta: 465 HU); excretory-phase urine and oral contrast are beyond the spine."""
DENSE_CONTRAST_HU = 2000.0  # undiluted contrast in the vein it is injected into
SOFT_TISSUE_HU = (-20.0, 90.0)  # muscle and organs: where the CT's noise is measured
HOMOGENEITY_NOISE_FACTOR = 2.2
HOMOGENEITY_FLOOR_HU = 28.0  # below any CT's noise floor at 2 mm: soft kernels measure ~8–15
HOMOGENEITY_CEILING_HU = 60.0  # beyond this spread nothing is homogeneous, whatever the noise
NOISE_TARGET_HU = 20.0  # the CT is smoothed (`SMOOTHING_SIGMAS_VOX`) until its noise is below
SMOOTHING_SIGMAS_VOX = (0.7, 1.0, 1.5)
MIN_LENGTH_MM = 45.0  # longer than one vertebral body with both its discs' partial volume
MIN_CHAMBER_ML = 60.0  # a heart chamber, or the aortic arch, though it is short
MIN_AREA_MM2 = 20.0  # smallest cross-section (after erosion) of a large vessel's core
MIN_THIN_AREA_MM2 = 12.0  # of a thinner vessel (common iliac artery, azygos), not eroded
MAX_BRIGHT_RIM = 0.6  # a core walled by brighter bone over more than this is bone
RIM_BRIGHTER_HU = 120.0  # "brighter than the lumen" on the rim: cortex, not a wall's blur
CALCIUM_HU = 500.0  # on a vessel's wall, at least this and brighter than the lumen: calcium
METAL_HU = 2500.0
GRAFT_WALL_MM = 4.0  # a stent graft's struts, their blur and its fabric, around its lumen
GROW_STEPS = 3  # the eroded voxel(s) and the inhomogeneous edge, back to the lumen's own HU…
LUMEN_TOLERANCE_HU = 40.0  # (within this of its median, or 2.5 × the noise)…
WALL_STEPS = 2  # …then the partial-volumed wall where it is as bright as bone
WALL_FLOOR_HU = 150.0
UPHILL_MIN_HU = 12.0
BRIGHT_LUMEN_HU = 2 * WALL_FLOOR_HU - 40.0  # blurred half and half with muscle: ≥ the floor
GROW_FLOOR_HU = 70.0  # the growth stops at muscle, fat and lung (a lumen's edge blurred
# with fat or muscle is still above it)

BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class VesselMap:
    """Blood (contrast-filled vessels, heart) and wall calcium/metal on a grid.

    ``lumen`` and ``wall_calcium`` are bool ``[k, j, i]`` on the grid of ``affine_lps``;
    ``noise_hu`` is the CT's measured noise at that grid (local SD in soft tissue);
    ``lumen_hu`` the median HU of the found lumens (None: no contrast-filled vessel).
    """

    lumen: BoolArray
    wall_calcium: BoolArray
    affine_lps: FloatArray
    noise_hu: float
    lumen_hu: float | None

    @property
    def found(self) -> bool:
        return self.lumen_hu is not None

    def describe(self) -> str:
        """One sentence for warnings and reports."""
        if not self.found:
            return "No contrast-filled vessel was found (no intravenous contrast, or none near " \
                   "the spine)."
        calc = " with calcium or metal on their walls" if self.wall_calcium.any() else ""
        return (f"Contrast-filled vessels (lumen about {self.lumen_hu:.0f} HU){calc} were "
                "found and kept out of the bone.")


def local_mean_sd(hu: NDArray[np.float32], superior_axis: int = 0
                  ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Mean and standard deviation of HU over each voxel's 3 × 3 in-plane neighbourhood
    (across the body axis): vessels that run obliquely (the iliac arteries, 30–40° from
    the body axis) stay homogeneous across their own section."""
    size = [3, 3, 3]
    size[superior_axis] = 1
    mean = ndimage.uniform_filter(hu, size=size, mode="nearest")
    sq = ndimage.uniform_filter(hu * hu, size=size, mode="nearest")
    sd = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    return mean, sd


def smoothed_to_noise(hu: NDArray[Any], target_hu: float, superior_axis: int = 0,
                      every: int = 1
                      ) -> tuple[NDArray[Any], NDArray[np.float32], NDArray[np.float32], float]:
    """``hu`` as it is, or smoothed by the first of `SMOOTHING_SIGMAS_VOX` (voxels) that
    brings its noise to ``target_hu`` (else the last); with the local mean and SD and the
    noise (`noise_sd_hu`) of what is returned, measured on every ``every``-th slice along
    axis 0 (a large CT need not be measured whole).

    Why smoothing: a sharp (lung or bone) kernel or a low dose leaves ±100 HU of noise, and
    a threshold meant for soft tissue against bone, or a homogeneity test, then fails
    everywhere. One loop for every caller: the vessels here, the body interiors of a noisy CT
    (`spine_column.quiet_hu`).
    """
    smooth = hu
    mean, sd = local_mean_sd(np.asarray(hu[::every], dtype=np.float32), superior_axis)
    noise = noise_sd_hu(mean, sd)
    for sigma in SMOOTHING_SIGMAS_VOX:
        if noise <= target_hu:
            break
        smooth = ndimage.gaussian_filter(np.asarray(hu, dtype=np.float32), sigma)
        mean, sd = local_mean_sd(smooth[::every], superior_axis)
        noise = noise_sd_hu(mean, sd)
    return smooth, mean, sd, noise


def _denoised_stats(hu: NDArray[np.float32], superior_axis: int
                    ) -> tuple[NDArray[np.float32], NDArray[np.float32], float]:
    """Local mean and SD after as much smoothing as the CT's noise needs, and that noise.

    Why: against ±100 HU of noise at 2 mm nothing is homogeneous and everything is;
    smoothed until soft tissue is within `NOISE_TARGET_HU`, a lumen is homogeneous again
    while a cortex's edge is not.
    """
    _, mean, sd, noise = smoothed_to_noise(hu, NOISE_TARGET_HU, superior_axis)
    return mean, sd, noise


def noise_sd_hu(mean: NDArray[np.float32], sd: NDArray[np.float32]) -> float:
    """The CT's noise at this grid: the median local SD over soft tissue (muscle, organs),
    which is homogeneous in every patient; a floor where too little soft tissue is seen."""
    soft = (mean > SOFT_TISSUE_HU[0]) & (mean < SOFT_TISSUE_HU[1])
    if np.count_nonzero(soft) < 500:
        return HOMOGENEITY_FLOOR_HU / HOMOGENEITY_NOISE_FACTOR
    return float(np.median(sd[soft]))


def find_vessels(hu: NDArray[np.float32], affine_lps: FloatArray, spacing_mm: float,
                 superior_axis: int = 0, *, bone_kji: NDArray[np.intp] | None = None,
                 box: tuple[slice, slice, slice] | None = None) -> VesselMap:
    """Contrast-filled vessels and heart chambers on an isotropic grid.

    Parameters
    ----------
    hu
        HU ``[k, j, i]`` on an isotropic grid of ``spacing_mm`` (the anatomy's working grid).
    affine_lps
        That grid's index→LPS affine (kept with the masks).
    superior_axis
        The array axis that runs head–foot (0 on the LPS-aligned working grid).
    bone_kji
        (N, 3) voxels known to be bone (the middle of the vertebral bodies, in front of the
        canal): a piece holding one of them is a body's cancellous core, never a vessel,
        however homogeneous and long (a fused or ankylosed column has no discs to cut it).
    box
        Look only within these ``[k, j, i]`` slices of the grid (the masks returned still
        cover the whole grid).
    """
    if box is not None:
        offset = np.array([b.start or 0 for b in box])
        inside = None
        if bone_kji is not None:
            local = np.asarray(bone_kji) - offset
            inside = local[np.all((local >= 0) & (local < hu[box].shape), axis=1)]
        inner = find_vessels(hu[box], affine_lps, spacing_mm, superior_axis, bone_kji=inside)
        lumen = np.zeros(hu.shape, dtype=bool)
        calcium = np.zeros(hu.shape, dtype=bool)
        lumen[box], calcium[box] = inner.lumen, inner.wall_calcium
        return VesselMap(lumen, calcium, affine_lps, inner.noise_hu, inner.lumen_hu)
    s = float(spacing_mm)
    mean, sd, noise = _denoised_stats(hu, superior_axis)
    limit = float(np.clip(HOMOGENEITY_NOISE_FACTOR * noise, HOMOGENEITY_FLOOR_HU,
                          HOMOGENEITY_CEILING_HU))
    blood = (mean >= BLOOD_HU[0]) & (mean <= BLOOD_HU[1]) & (sd <= limit) & (hu < METAL_HU)
    dense_blood = (mean >= BLOOD_HU[1]) & (mean <= DENSE_CONTRAST_HU) & (sd <= limit)
    empty = np.zeros(hu.shape, dtype=bool)
    # large vessels and chambers from the eroded mask (cut from the bodies they touch), then
    # the thinner ones (iliac arteries, azygos), which the erosion would erase, from the rest
    kept = np.zeros(hu.shape, dtype=np.float32)  # each kept voxel: its piece's lumen HU
    lumens: list[float] = []
    weights: list[float] = []
    for eroded, min_area in ((1, MIN_AREA_MM2), (0, MIN_THIN_AREA_MM2)):
        core = (ndimage.binary_erosion(blood) if eroded
                else blood & ~ndimage.binary_dilation(kept > 0, iterations=2))
        found, lumen_hu, size = _select(core, hu, mean, s, superior_axis, min_area, bone_kji,
                                        dense_blood, eroded)
        kept = np.maximum(kept, found)
        lumens += lumen_hu
        weights += size
    if not lumens:
        return VesselMap(empty, empty.copy(), affine_lps, noise, None)
    ceiling = float(np.max(lumens)) + RIM_BRIGHTER_HU
    # back to the lumen's own edge (within its noise), then over the partial-volumed wall
    # where that is as bright as bone; never uphill by more than the noise (a lumen and a
    # body's cancellous bone of the same HU behind a thin cortex must not run together)
    uphill = max(UPHILL_MIN_HU, 2.0 * noise)
    band = max(LUMEN_TOLERANCE_HU, 2.5 * noise)
    lumen = _grow_downhill(hu, kept > 0, GROW_STEPS, ceiling, uphill, floor=kept - band,
                           cap=kept + band / 2.0)
    # (only where the wall slopes down to soft tissue: cancellous bone behind a cortex
    # blurred to the lumen's HU has bone all round it)
    # and only from lumens bright enough to blur their wall above it (an enhanced vein of
    # ~140 HU has no such wall, and cancellous bone beside it would be taken instead)
    bright = lumen & ndimage.binary_dilation(kept >= BRIGHT_LUMEN_HU, iterations=GROW_STEPS)
    if bright.any():
        beside_soft = ndimage.minimum_filter(hu, size=3) < WALL_FLOOR_HU
        lumen |= _grow_downhill(hu, bright, WALL_STEPS, ceiling, uphill,
                                floor=np.float32(WALL_FLOOR_HU), within=beside_soft)
    ring = ndimage.binary_dilation(lumen, iterations=max(1, round(2.0 / s))) & ~lumen
    calcium = ring & ((hu >= max(CALCIUM_HU, ceiling)) | (hu >= METAL_HU))
    # a stent's struts (or a ring of calcium) make the lumen inside them inhomogeneous:
    # what they enclose in the axial plane is lumen all the same
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    if superior_axis != 0:
        in_plane = np.moveaxis(in_plane, 0, superior_axis)
    enclosed = ndimage.binary_fill_holes(lumen | calcium, structure=in_plane)
    lumen = lumen | (enclosed & ~calcium)
    calcium |= _stent_graft_wall(lumen, calcium & (hu >= METAL_HU), s)
    median_lumen = float(np.average(lumens, weights=weights))
    return VesselMap(lumen, calcium, affine_lps, noise, median_lumen)


def _stent_graft_wall(lumen: BoolArray, metal_on_wall: BoolArray, s: float) -> BoolArray:
    """The wall of every lumen that has metal on it (a stent graft's struts): a shell of
    `GRAFT_WALL_MM` around that lumen, flagged with the wall's calcium and metal.

    Why: a stent graft's struts blur into a ring of 180–2500 HU around each wire, and
    between them lie its fabric and the aneurysm sac. On the shared thorax CT that ring
    joined T7's cortex, the body's convex hull took the ring and the sac between, and T7's
    centre lay 11 mm further towards the aorta than it does now (T4 and T6 pulled too);
    the tips are aimed at it.
    A shell kept out of bone around every contrast-filled lumen cut the cortex of bodies
    that a vessel touches (the phantoms painted from the labelled CTs, whose aorta lies
    against the bodies: false Genant grades, a painted fracture missed); a stent is told
    by its metal, which no painted vessel and no bare aorta has.
    """
    if not metal_on_wall.any():
        return np.zeros_like(lumen)
    pieces, _ = ndimage.label(lumen, structure=np.ones((3, 3, 3), dtype=bool))
    touching = ndimage.binary_dilation(metal_on_wall, iterations=max(1, round(2.0 / s)))
    stented = np.unique(pieces[touching & lumen])
    grafted = np.isin(pieces, stented[stented > 0])
    if not grafted.any():
        return np.zeros_like(lumen)
    wall = ndimage.binary_dilation(grafted, iterations=max(1, round(GRAFT_WALL_MM / s)))
    return np.asarray(wall & ~lumen)


def _select(core: BoolArray, hu: NDArray[np.float32], mean: NDArray[np.float32], s: float,
            superior_axis: int, min_area_mm2: float, bone_kji: NDArray[np.intp] | None,
            dense_blood: BoolArray, eroded: int
            ) -> tuple[NDArray[np.float32], list[float], list[float]]:
    """The pieces of ``core`` that are vessels (see the module docstring) as a map of their
    lumen's HU (0 elsewhere), and their lumen HU and sizes. ``core`` was eroded ``eroded``
    times from the blood mask: its rim is looked for that much farther out."""
    labels, n = ndimage.label(core)
    zero = np.zeros(core.shape, dtype=np.float32)
    if n == 0:
        return zero, [], []
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    objects = ndimage.find_objects(labels)
    extent_vox = np.array([o[superior_axis].stop - o[superior_axis].start for o in objects])
    length_mm = extent_vox * s
    volume_ml = sizes * s ** 3 / 1000.0
    area_mm2 = sizes * s ** 3 / np.maximum(length_mm, s)  # mean cross-section
    scan_mm = hu.shape[superior_axis] * s
    long_enough = length_mm >= min(MIN_LENGTH_MM, 0.8 * scan_mm)
    candidate = (long_enough | (volume_ml >= MIN_CHAMBER_ML)) & (area_mm2 >= min_area_mm2)
    if bone_kji is not None and len(bone_kji):
        k, j, i = (np.clip(np.asarray(bone_kji)[:, a], 0, hu.shape[a] - 1) for a in range(3))
        held = np.unique(labels[k, j, i])
        candidate[held[held > 0] - 1] = False
    which = np.flatnonzero(candidate)
    if not which.size:
        return zero, [], []
    lumen_hu = np.zeros(n)
    for m in which:  # per box: ndimage.median sorts the whole grid (seconds at 512²)
        box = objects[m]
        if box is not None:
            lumen_hu[m] = float(np.median(mean[box][labels[box] == m + 1]))
    rim_bright = _bright_rim_fraction(hu, labels, objects, lumen_hu, which, dense_blood, eroded)
    keep = candidate & (rim_bright < MAX_BRIGHT_RIM)
    chosen = np.flatnonzero(keep)
    hu_lut = np.concatenate([[0.0], np.where(keep, lumen_hu, 0.0)]).astype(np.float32)
    return hu_lut[labels], lumen_hu[chosen].tolist(), sizes[chosen].astype(float).tolist()


def _grow_downhill(hu: NDArray[np.float32], seed: BoolArray, steps: int, ceiling: float,
                   tolerance: float, floor: NDArray[np.float32] | np.float32,
                   within: BoolArray | None = None,
                   cap: NDArray[np.float32] | None = None) -> BoolArray:
    """``seed`` grown voxel by voxel, ``steps`` times, into voxels no brighter than the
    brightest grown neighbour (plus ``tolerance``, the noise) and than ``ceiling``, and not
    darker than ``floor`` (a number, or a map on the seed carried along with the growth),
    no brighter than ``cap`` (a map carried likewise) and within ``within`` where given.

    Why downhill: from a lumen outwards the HU falls through the partial-volumed wall to
    fat; meeting bone it rises again at the cortex, where the growth stops. Without it the
    wall's partial volume (between bone threshold and lumen) stayed "bone" and ringed every
    vessel, joining it to the vertebra that touches it. Why a floor: a portal-venous vena
    cava (~135 HU) would otherwise flow on into a disc's annulus (~100 HU) beside it.
    """
    grown = seed.copy()
    values = np.where(grown, hu, -np.inf).astype(np.float32)
    per_voxel = np.ndim(floor) > 0
    floors = np.where(grown, floor, -np.inf).astype(np.float32) if per_voxel else None
    caps = np.where(grown, cap, -np.inf).astype(np.float32) if cap is not None else None
    for _ in range(steps):
        reach = ndimage.maximum_filter(values, size=3)
        low = ndimage.maximum_filter(floors, size=3) if floors is not None else floor
        new = ~grown & np.isfinite(reach) & (hu <= reach + tolerance) & (hu < ceiling) \
            & (hu >= low) & (hu >= GROW_FLOOR_HU)
        if caps is not None:
            high = ndimage.maximum_filter(caps, size=3)
            new &= hu <= high
        if within is not None:
            new &= within
        if not new.any():
            break
        grown |= new
        values[new] = hu[new]
        if floors is not None:
            floors[new] = np.asarray(low)[new]
        if caps is not None:
            caps[new] = high[new]
    return grown


def _bright_rim_fraction(hu: NDArray[np.float32], labels: NDArray[np.int32],
                         objects: list[tuple[slice, ...] | None], lumen_hu: FloatArray,
                         which: NDArray[np.intp], dense_blood: BoolArray, eroded: int
                         ) -> FloatArray:
    """Per candidate piece, the fraction of its rim (one to three voxels outside it,
    beyond the ``eroded`` voxels taken off it) whose brightest voxel is brighter than its
    lumen by `RIM_BRIGHTER_HU`. A piece of cancellous bone is walled by cortex, a lumen by
    its wall and fat. Undiluted contrast next to it (a vena cava or subclavian vein during
    the injection) is homogeneous and is not cortex: it does not count."""
    out = np.ones(len(objects))
    bright_max = ndimage.maximum_filter(hu, size=3)
    for n in which:
        box = objects[n]
        if box is None:
            continue
        reach = 2 + eroded
        grown = tuple(slice(max(0, b.start - reach), min(size, b.stop + reach))
                      for b, size in zip(box, hu.shape, strict=True))
        piece = labels[grown] == n + 1
        inner = ndimage.binary_dilation(piece, iterations=eroded) if eroded else piece
        near = (ndimage.binary_dilation(inner, iterations=2) & ~inner & ~dense_blood[grown])
        if not near.any():
            continue
        rim = bright_max[grown][near]
        out[n] = float(np.mean(rim > lumen_hu[n] + RIM_BRIGHTER_HU))
    return out
