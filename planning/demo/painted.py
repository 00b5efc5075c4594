"""Phantoms painted from real vertebra label maps, whose truth is exact.

Why: on a real CT the truth (where the canal, the bodies and the vessels are) is a label map
drawn by someone else and is itself uncertain; a phantom painted from that label map has
*real* shapes (a real patient's vertebrae, curvature and proportions) and a truth that is
exactly what was painted. With contrast-filled vessels pressed against the bodies — the aorta
anterolateral on the patient's left, the vena cava on the right, the common iliac arteries
below the bifurcation — it tests what a contrast CT tests, with the answer known.

The painting, on an LPS-aligned isotropic grid (1.5 mm by default): air outside an
elliptical body; fat inside it, muscle within 35 mm of the spine; each vertebra a cortical
shell (one voxel, `CORTEX_HU`) around cancellous bone (`cancellous_hu`); discs from a body
map where given; the canal (as `planning.anatomy.from_labels` derives it from the labels)
CSF; vessels of `lumen_hu` with a wall; Gaussian noise of ``noise_hu``; optionally a CT
table behind the patient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from planning.anatomy.from_labels import anatomy_from_label_map
from planning.anatomy.label_tables import LabelTable
from planning.anatomy.model import Anatomy
from planning.volume import FloatArray, Volume, kji_transform

CORTEX_HU = 650.0
DISC_HU = 85.0
CSF_HU = 10.0
MUSCLE_HU = 45.0
FAT_HU = -95.0
WALL_HU = 40.0
TABLE_HU = 250.0
AORTA_RADIUS_MM = 11.0
CAVA_RADIUS_MM = 10.5
ILIAC_RADIUS_MM = 5.5
PRESS_MM = 0.5  # how far a vessel's lumen is pressed into the body's outline (then cut)

BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class PaintedPhantom:
    """A painted CT and its exact truth on the CT's grid.

    ``vessels`` is the painted lumen (bool ``[k, j, i]``), ``anatomy`` the anatomy derived
    from the labels on this CT (canal, vertebrae, bodies exactly as painted).
    """

    ct: Volume
    labels: Volume
    anatomy: Anatomy
    vessels: BoolArray
    table: BoolArray


def paint_from_labels(labels: Volume, table: LabelTable, *, bodies: Volume | None = None,
                      spacing_mm: float = 1.5, cancellous_hu: float = 180.0,
                      lumen_hu: tuple[float, float] | None = (300.0, 200.0),
                      noise_hu: float = 12.0, with_table: bool = False,
                      seed: int = 0) -> PaintedPhantom:
    """Paint a CT from a vertebra label map (any grid; whole vertebrae, codes of ``table``).

    ``lumen_hu``: (arterial, venous) lumen HU, or None for a CT without contrast.
    """
    rng = np.random.default_rng(seed)
    grid = painting_grid(labels, spacing_mm)
    affine = grid.affine_lps
    codes = table.vertebra_codes
    lab = resample_nearest(labels, grid)
    lab[~np.isin(lab, list(codes))] = 0
    body_map = resample_nearest(bodies, grid) if bodies is not None else None
    lab_volume = Volume(lab, affine, source="painted phantom labels")
    bare = Volume(np.full(lab.shape, -1000, dtype=np.int16), affine)
    truth = anatomy_from_label_map(bare, lab_volume, table,
                                   bodies=None if body_map is None else
                                   Volume(body_map, affine))
    vert = lab > 0
    canal = _on_grid(truth.canal, truth.affine_lps, grid)
    body = _on_grid(truth.bodies, truth.affine_lps, grid)

    hu = np.full(lab.shape, -1000.0, dtype=np.float32)
    outline = _patient_outline(grid, vert)
    hu[outline] = FAT_HU
    near_spine = ndimage.distance_transform_edt(~vert, sampling=spacing_mm) <= 35.0
    hu[outline & near_spine] = MUSCLE_HU
    if body_map is not None:
        hu[(body_map == 2) & ~vert] = DISC_HU
    hu[canal & ~vert] = CSF_HU
    vessels = np.zeros(lab.shape, dtype=bool)
    if lumen_hu is not None:
        vessels, walls = _paint_vessels(grid, body if body.any() else vert, vert, lumen_hu, hu)
        hu[walls & ~vert & ~vessels] = WALL_HU
    shell = vert & ~ndimage.binary_erosion(vert)
    hu[vert] = cancellous_hu
    hu[shell] = CORTEX_HU
    table_mask = _paint_table(grid, outline, hu) if with_table else np.zeros_like(vert)
    hu += rng.normal(0.0, noise_hu, hu.shape).astype(np.float32) * (hu > -900)
    hu = ndimage.gaussian_filter(hu, 0.5)
    ct = Volume(np.clip(np.rint(hu), -1024, 3071).astype(np.int16), affine,
                study_uid="2.25.1", series_uid="2.25.2", frame_of_reference_uid="2.25.3",
                source="painted phantom")
    anatomy = anatomy_from_label_map(ct, lab_volume, table,
                                     bodies=None if body_map is None else
                                     Volume(body_map, affine))
    return PaintedPhantom(ct, lab_volume, anatomy, vessels, table_mask)


def painting_grid(labels: Volume, spacing_mm: float) -> Volume:
    """The LPS-aligned isotropic grid of ``spacing_mm`` over a label map's extent, empty:
    where `paint_from_labels` paints (and `painted_fracture` cuts its fractures)."""
    lo, hi = labels.bounds_lps()
    affine = np.eye(4)
    affine[:3, :3] *= spacing_mm
    affine[:3, 3] = lo
    shape_ijk = np.floor((hi - lo) / spacing_mm).astype(int) + 1
    return Volume(np.zeros(tuple(int(n) for n in shape_ijk[::-1]), dtype=np.int16), affine)


def resample_nearest(source: Volume, grid: Volume) -> NDArray[np.int16]:
    """``source`` (a label map) sampled at ``grid``'s voxel centres, nearest, 0 outside."""
    matrix, offset = kji_transform(np.linalg.inv(source.affine_lps) @ grid.affine_lps)
    out = ndimage.affine_transform(source.array, matrix, offset,
                                   output_shape=grid.array.shape, order=0, mode="constant",
                                   cval=0)
    return np.asarray(out, dtype=np.int16)


def _on_grid(mask: BoolArray, affine_lps: FloatArray, grid: Volume) -> BoolArray:
    return resample_nearest(Volume(mask.astype(np.int16), affine_lps), grid) > 0


def _patient_outline(grid: Volume, vert: BoolArray) -> BoolArray:
    """An elliptical trunk around the spine: 150 × 115 mm semi-axes, centred 60 mm in front
    of the vertebrae's middle."""
    k, j, i = np.nonzero(vert)
    centre = grid.to_lps(np.array([i.mean(), j.mean(), k.mean()]))
    _, jj, ii = np.indices((1, *grid.array.shape[1:]), sparse=True)
    x = grid.affine_lps[0, 3] + ii * grid.spacing_mm[0]
    y = grid.affine_lps[1, 3] + jj * grid.spacing_mm[1]
    inside = ((x - centre[0]) / 150.0) ** 2 + ((y - (centre[1] - 60.0)) / 115.0) ** 2 <= 1.0
    return np.broadcast_to(inside, grid.array.shape).copy()


def _paint_vessels(grid: Volume, body: BoolArray, vert: BoolArray,
                   lumen_hu: tuple[float, float], hu: NDArray[np.float32]
                   ) -> tuple[BoolArray, BoolArray]:
    """Aorta (patient's left, anterolateral), vena cava (right) pressed against the bodies,
    and the common iliac arteries below the aortic bifurcation (at the lowest fifth of the
    lumbar bodies). Returns (lumen, wall)."""
    s = float(grid.spacing_mm[0])
    nk = body.shape[0]
    present = np.flatnonzero(body.any(axis=(1, 2)))
    lumen = np.zeros(body.shape, dtype=bool)
    wall = np.zeros(body.shape, dtype=bool)
    if present.size < 3:
        return lumen, wall
    _, jj, ii = np.indices((1, *body.shape[1:]), sparse=True)
    centres = {}
    for name, direction, radius in (("aorta", (0.55, -0.84), AORTA_RADIUS_MM),
                                    ("cava", (-0.62, -0.78), CAVA_RADIUS_MM)):
        u = np.array(direction) / np.linalg.norm(direction)
        path = np.full((nk, 2), np.nan)
        for kb in present:
            jb, ib = np.nonzero(body[kb])
            ci, cj = ib.mean(), jb.mean()
            reach = (ib - ci) * u[0] + (jb - cj) * u[1]
            edge = reach.max()
            path[kb] = (ci + (edge + radius / s - PRESS_MM / s) * u[0],
                       cj + (edge + radius / s - PRESS_MM / s) * u[1])
        known = np.flatnonzero(np.isfinite(path[:, 0]))
        ks = np.arange(nk)
        for c in range(2):
            path[:, c] = ndimage.gaussian_filter1d(np.interp(ks, known, path[known, c]),
                                                   8.0 / s, mode="nearest")
        centres[name] = (path, radius)
    split = int(present[0] + 0.2 * (present[-1] - present[0]))  # k runs towards the head
    for name, (path, radius) in centres.items():
        value = lumen_hu[0] if name == "aorta" else lumen_hu[1]
        for k in range(nk):
            if name == "aorta" and k < split:
                continue
            disc = (ii - path[k, 0]) ** 2 + (jj - path[k, 1]) ** 2 <= (radius / s) ** 2
            ring = (ii - path[k, 0]) ** 2 + (jj - path[k, 1]) ** 2 <= ((radius + 1.5) / s) ** 2
            here = disc[0] & ~vert[k]
            lumen[k] |= here
            wall[k] |= ring[0] & ~disc[0]
            hu[k][here] = value
    # common iliac arteries: from the bifurcation, 35° apart from the midline, downwards
    path, _ = centres["aorta"]
    mid = path[split].copy()
    for sign in (-1.0, 1.0):
        for k in range(split, -1, -1):
            drop = (split - k) * s
            ci = mid[0] + sign * np.tan(np.radians(35.0)) * drop / s
            cj = mid[1] - 0.3 * drop / s
            disc = (ii - ci) ** 2 + (jj - cj) ** 2 <= (ILIAC_RADIUS_MM / s) ** 2
            here = disc[0] & ~vert[k]
            lumen[k] |= here
            hu[k][here] = lumen_hu[0]
    return lumen, wall


def _paint_table(grid: Volume, outline: BoolArray, hu: NDArray[np.float32]) -> BoolArray:
    """A CT table: a curved 6 mm shell 25 mm behind the patient with two dense rails."""
    s = float(grid.spacing_mm[1])
    back = np.flatnonzero(outline.any(axis=(0, 2)))
    if back.size == 0:
        return np.zeros(outline.shape, dtype=bool)
    j0 = int(back[-1] + round(25.0 / s))  # +j is posterior
    mask = np.zeros(outline.shape, dtype=bool)
    if j0 + 1 >= outline.shape[1]:
        return mask
    ni = outline.shape[2]
    for i in range(ni):
        bend = round(((i - ni / 2) / (ni / 2)) ** 2 * 8.0 / s)
        top = max(0, j0 - bend)
        mask[:, top:min(outline.shape[1], top + max(2, round(6.0 / s))), i] = True
    hu[mask] = TABLE_HU
    rails = mask.copy()
    rails[:, :, ni // 5: 4 * ni // 5] = False
    hu[rails] = 1100.0
    return mask
