"""Bone surface of a CT volume as a triangle mesh in patient LPS millimetres.

Why downsample first: a 512×512×300 CT has 78 million voxels, and marching cubes at full
resolution takes tens of seconds and yields millions of triangles that the 3-D overview does
not need. Thresholding at full resolution and then averaging the bone mask over blocks of
~1.5 mm keeps vertebrae and pedicles recognisable, places the surface on the full-resolution
bone edge (the 0.5 iso-surface of the bone fraction) and runs in about a second.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.measure import marching_cubes

from planning.progress import Progress, no_progress
from planning.result_memo import MEMO
from planning.triangle_mesh import TriangleMesh, empty_mesh
from planning.volume import Volume

BONE_THRESHOLD_HU = 200.0
"""Cortical and dense cancellous bone are above this; muscle, fat and contrast-free vessels
are below it."""


BoneSurface = TriangleMesh
"""The bone surface is a `TriangleMesh` like every other mesh (outward: out of the bone)."""


def downsample_factors(spacing_mm: NDArray[np.float64], target_mm: float) -> tuple[int, ...]:
    """Integer block size per axis (i, j, k) bringing voxels close to ``target_mm``."""
    return tuple(max(1, round(target_mm / float(s))) for s in spacing_mm)


def _bone_fraction(
    array_kji: NDArray[np.int16],
    threshold_hu: float,
    factors_kji: tuple[int, ...],
    progress: Progress,
    sigma_vox: float = 0.0,
) -> NDArray[np.float32]:
    """Fraction of full-resolution voxels at or above the threshold in each block.

    Why a fraction rather than mean HU: thresholding happens at full resolution, and the 0.5
    iso-surface of the block fraction lies on the full-resolution bone edge whatever the
    bone's density, whereas a 200 HU iso-surface of block-averaged HU drifts outwards by
    up to half a coarse voxel on dense cortex. Computed slab by slab so memory stays small
    and the user can cancel between slabs; trailing voxels that do not fill a block
    (less than one block at the scan's edge) are dropped.
    """
    fk, fj, fi = factors_kji
    nk, nj, ni = (n // f for n, f in zip(array_kji.shape, factors_kji, strict=True))
    out = np.empty((nk, nj, ni), dtype=np.float32)
    slabs_per_step = max(1, 16 // fk)
    for k0 in range(0, nk, slabs_per_step):
        k1 = min(nk, k0 + slabs_per_step)
        if sigma_vox > 0:  # smoothed with a margin of slices, so slabs join seamlessly
            pad = int(np.ceil(2 * sigma_vox))
            lo, hi = max(0, k0 * fk - pad), min(array_kji.shape[0], k1 * fk + pad)
            smooth = ndimage.gaussian_filter(array_kji[lo:hi].astype(np.float32), sigma_vox)
            slab = smooth[k0 * fk - lo : k0 * fk - lo + (k1 - k0) * fk, : nj * fj,
                          : ni * fi] >= threshold_hu
        else:
            slab = array_kji[k0 * fk : k1 * fk, : nj * fj, : ni * fi] >= threshold_hu
        acc = out[k0:k1]
        acc[...] = 0.0
        # summing strided views is several times faster than reshape(...).mean(axis=...)
        for dk in range(fk):
            for dj in range(fj):
                for di in range(fi):
                    acc += slab[dk::fk, dj::fj, di::fi]
        acc *= 1.0 / (fk * fj * fi)
        progress.report(k1, nk * 2, "Preparing bone surface…")
    return out


NOISY_HU = 40.0  # a CT noisier than this (SD in soft tissue) is smoothed before the threshold
TISSUE_HU = -400.0  # the patient's body: above this (fat is −100); air and foam below


def _denoising_sigma_vox(array_kji: NDArray[np.int16]) -> float:
    """Gaussian sigma (voxels) that brings the CT's noise down to about `NOISY_HU`, or 0.

    Noise from neighbouring voxels' differences in soft tissue (−50 … 100 HU) on a sparse
    sample of slices: the median absolute difference, which bone edges barely move.
    """
    sample = array_kji[:: max(1, array_kji.shape[0] // 12)].astype(np.float32)
    a, b = sample[:, :, :-1], sample[:, :, 1:]
    soft = (a > -50) & (a < 100) & (b > -50) & (b < 100)
    if np.count_nonzero(soft) < 1000:
        return 0.0
    noise = float(np.median(np.abs(a[soft] - b[soft]))) * 1.4826 / np.sqrt(2.0)
    if noise <= NOISY_HU:
        return 0.0
    # a 3-D Gaussian of sigma s divides white noise by about (2 √π s)^1.5
    return float(min(2.5, (noise / NOISY_HU) ** (2.0 / 3.0) / (2.0 * np.sqrt(np.pi))))


def _patient(array_kji: NDArray[np.int16], factors_kji: tuple[int, ...],
             shape: tuple[int, ...]) -> NDArray[np.bool_]:
    """On the block grid: the patient, i.e. the largest connected body of tissue, opened so
    that a mattress or blanket touching the back does not join the table to it, with its
    holes (lungs, bowel gas) filled slice by slice."""
    fk, fj, fi = factors_kji
    nk, nj, ni = shape
    sub = array_kji[fk // 2 :: fk, fj // 2 :: fj, fi // 2 :: fi][:nk, :nj, :ni] > TISSUE_HU
    if not sub.any() or sub.all():
        return np.ones(shape, dtype=bool)
    opened = ndimage.binary_opening(sub, iterations=2)
    labels, n = ndimage.label(opened)
    if n == 0:
        return np.ones(shape, dtype=bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    body = labels == int(np.argmax(sizes))
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    body = ndimage.binary_fill_holes(body, structure=in_plane)
    return np.asarray(ndimage.binary_dilation(body, iterations=3))  # back the opening's loss


def _on_blocks(volume: Volume, f_ijk: tuple[int, ...], shape: tuple[int, ...],
               mask: NDArray[np.bool_], affine_lps: NDArray[np.float64]) -> NDArray[np.bool_]:
    """A mask on another grid (nearest) at the block grid's voxel centres: only the blocks
    within the mask's bounding box are looked up (a vessel tree is a small part of a CT)."""
    out = np.zeros(shape, dtype=bool)
    if not mask.any():
        return out
    f = np.array(f_ijk, dtype=np.float64)
    k, j, i = (np.flatnonzero(mask.any(axis=other)) for other in ((1, 2), (0, 2), (0, 1)))
    corners = np.array([[a, b, c] for a in (i[0], i[-1]) for b in (j[0], j[-1])
                        for c in (k[0], k[-1])], dtype=np.float64)
    lps_corners = corners @ affine_lps[:3, :3].T + affine_lps[:3, 3]
    block = volume.to_index(lps_corners)  # continuous CT (i, j, k)
    lo = np.maximum(np.floor(block.min(axis=0) / f).astype(int) - 1, 0)
    hi = np.minimum(np.ceil(block.max(axis=0) / f).astype(int) + 2, np.array(shape[::-1]))
    if np.any(hi <= lo):
        return out
    kk, jj, ii = np.meshgrid(*(np.arange(lo[a], hi[a]) for a in (2, 1, 0)), indexing="ij")
    centres = np.stack([ii.ravel(), jj.ravel(), kk.ravel()], 1) * f + (f - 1.0) / 2.0
    inv = np.linalg.inv(affine_lps)
    ijk = np.rint(volume.to_lps(centres) @ inv[:3, :3].T + inv[:3, 3]).astype(np.intp)
    ok = np.all((ijk >= 0) & (ijk < np.array(mask.shape[::-1])), axis=1)
    values = np.zeros(len(ijk), dtype=bool)
    values[ok] = mask[ijk[ok, 2], ijk[ok, 1], ijk[ok, 0]]
    out[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]] = values.reshape(kk.shape)
    return out


def not_bone_mask(volume: Volume) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """The contrast-filled vessels and heart of ``volume`` (lumen and wall calcium) on the
    anatomy's working grid, and that grid's affine: bright, but never bone (once per CT
    content in a process, `result_memo`)."""
    return MEMO.remembered("not bone", (volume.array, volume.affine_lps),
                           lambda: _not_bone_found(volume))


def _not_bone_found(volume: Volume) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    from planning.anatomy.spine_column import (
        SpineNotFoundError,
        find_column,
        posterior_body_points,
        working_grid,
    )
    from planning.vessels import find_vessels

    grid = working_grid(volume)
    try:  # the whole CT this time (the heart too), the bodies protected as for the anatomy
        bodies = posterior_body_points(find_column(grid).canal_ij, grid.spacing_mm)
    except SpineNotFoundError:
        bodies = None
    vessels = find_vessels(grid.hu, grid.affine_lps, grid.spacing_mm, bone_kji=bodies)
    return vessels.lumen | vessels.wall_calcium, grid.affine_lps


VESSEL_SHELL_FRACTION = 0.5  # a "bone" piece this much hugging a vessel is its wall


def _drop_vessel_shells(field: NDArray[np.float32], blood: NDArray[np.bool_]) -> None:
    """Zero the bright pieces that are mostly the wall of a vessel or heart chamber (within
    two blocks of its lumen): what is left of the heart once its blood is taken out. A
    vertebra that touches the aorta keeps its bone: little of it is near the lumen."""
    pieces, n = ndimage.label(field >= 0.5, structure=np.ones((3, 3, 3), dtype=bool))
    if n == 0 or not blood.any():
        return
    near = ndimage.binary_dilation(blood, iterations=2)
    sizes = np.bincount(pieces.ravel(), minlength=n + 1).astype(np.float64)
    hugging = np.bincount(pieces[near].ravel(), minlength=n + 1)
    shell = hugging / np.maximum(sizes, 1.0) > VESSEL_SHELL_FRACTION
    shell[0] = False
    if shell.any():
        field[ndimage.binary_dilation(shell[pieces])] = 0.0


def _drop_small_components(field: NDArray[np.float32], level: float, min_voxels: int) -> None:
    """Push components of bone smaller than ``min_voxels`` below the level, in place.

    Removes specks (calcifications, noise, contrast, metal scatter) that would clutter the
    3-D view; vertebrae separated by discs stay because each is far above the limit.
    """
    mask = field >= level
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    if n == 0:
        return
    sizes = np.bincount(labels.ravel())
    small = sizes < min_voxels
    small[0] = False
    if small.any():
        field[small[labels]] = 0.0


def extract_bone_surface(
    volume: Volume,
    threshold_hu: float = BONE_THRESHOLD_HU,
    target_spacing_mm: float = 1.5,
    smoothing_sigma_vox: float = 0.5,
    min_component_mm3: float = 500.0,
    progress: Progress | None = None,
    not_bone: tuple[NDArray[np.bool_], NDArray[np.float64]] | None = None,
) -> BoneSurface:
    """Surface of the bone (voxels ≥ ``threshold_hu``) on a ~``target_spacing_mm`` grid.

    Parameters
    ----------
    volume
        The CT; any orientation (flipped or oblique affines are handled).
    threshold_hu
        Voxels at or above this HU are bone; 200 HU separates bone from soft tissue.
    target_spacing_mm
        Approximate voxel size after block averaging; larger is faster and coarser.
    smoothing_sigma_vox
        Gaussian sigma in downsampled voxels, against staircase artefacts; 0 disables it.
    min_component_mm3
        Bone pieces smaller than this are left out.
    progress
        Reports progress and lets the user cancel (raises ``Cancelled``).
    not_bone
        A mask and its index→LPS affine of what is never bone however bright: the
        contrast-filled vessels and heart (`planning.vessels`, see `not_bone_mask`).

    Besides: bone outside the patient (the CT table, head holders, blankets: whatever the
    largest body of tissue does not hold) is left out, and a CT whose noise would speckle
    the threshold (a sharp lung kernel, ±100 HU) is smoothed first, so the surface shows
    the skeleton, not a box of noise.

    Returns
    -------
    BoneSurface
        Vertices and normals in LPS mm, faces wound counter-clockwise seen from outside.
    """
    progress = progress or no_progress()
    surface = MEMO.remembered(
        "bone surface", (volume.array, volume.affine_lps, threshold_hu, target_spacing_mm,
                         smoothing_sigma_vox, min_component_mm3, not_bone),
        lambda: _surface_made(volume, threshold_hu, target_spacing_mm, smoothing_sigma_vox,
                              min_component_mm3, progress, not_bone))
    progress.report(10, 10, "Bone surface ready")
    return surface


def _surface_made(volume: Volume, threshold_hu: float, target_spacing_mm: float,
                  smoothing_sigma_vox: float, min_component_mm3: float, progress: Progress,
                  not_bone: tuple[NDArray[np.bool_], NDArray[np.float64]] | None
                  ) -> BoneSurface:
    """`extract_bone_surface`, made (not remembered)."""
    f_ijk = downsample_factors(volume.spacing_mm, target_spacing_mm)
    f_kji = f_ijk[::-1]
    sigma = _denoising_sigma_vox(volume.array)
    field = _bone_fraction(volume.array, threshold_hu, f_kji, progress, sigma)
    if field.size == 0:
        return empty_mesh()  # no bone above the threshold
    if not_bone is not None:
        blood = _on_blocks(volume, f_ijk, field.shape, *not_bone)
        field[blood] = 0.0
        _drop_vessel_shells(field, blood)
    field[~_patient(volume.array, f_kji, field.shape)] = 0.0  # the table, head holders
    if smoothing_sigma_vox > 0:
        field = ndimage.gaussian_filter(
            field, smoothing_sigma_vox, mode="nearest", truncate=2.0
        )
    progress.report(6, 10, "Removing small bone fragments…")
    voxel_mm3 = float(np.prod(volume.spacing_mm * np.array(f_ijk)))
    _drop_small_components(field, 0.5, max(1, int(min_component_mm3 / voxel_mm3)))
    if field.max() < 0.5:
        return empty_mesh()  # no bone above the threshold
    # a border of no bone so that bone cut by the scan's edge still gives a closed surface
    field = np.pad(field, 1, mode="constant", constant_values=0.0)
    verts_kji, faces, normals_kji = _marching_cubes_in_slabs(field, 0.5, progress)
    if len(faces) == 0:
        return empty_mesh()  # no bone above the threshold
    progress.report(9, 10, "Placing surface in patient space…")
    return _to_patient_space(volume, f_ijk, verts_kji, faces, normals_kji)


def _marching_cubes_in_slabs(
    field: NDArray[np.float32], level: float, progress: Progress, slab: int = 48
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32]]:
    """Marching cubes over slabs of slices that share their boundary slice.

    Why slabs: the compiled marching cubes holds Python's GIL for the whole call, which
    would stall the GUI thread for that long; slabs keep each stall short and let the user
    cancel between them. Vertices on a shared slice are duplicated, not merged; their
    gradient normals are identical, so the shading shows no seam.
    """
    nk = field.shape[0]
    starts = list(range(0, max(nk - 1, 1), slab))
    verts, faces, normals, n_verts = [], [], [], 0
    for n, k0 in enumerate(starts):
        part = field[k0 : min(nk, k0 + slab + 1)]
        if part.shape[0] < 2 or part.max() < level or part.min() >= level:
            continue
        v, f, nrm, _ = marching_cubes(
            part, level=level, gradient_direction="descent", allow_degenerate=False
        )
        v[:, 0] += k0
        verts.append(v)
        faces.append(f + n_verts)
        normals.append(nrm)
        n_verts += len(v)
        progress.report(7 * len(starts) + 2 * (n + 1), 10 * len(starts), "Building bone surface…")
    if not verts:
        empty = np.zeros((0, 3), np.float32)
        return empty, np.zeros((0, 3), np.int64), empty
    return np.concatenate(verts), np.concatenate(faces), np.concatenate(normals)


def _to_patient_space(
    volume: Volume,
    f_ijk: tuple[int, ...],
    verts_kji: NDArray[np.float32],
    faces: NDArray[np.int64],
    normals_kji: NDArray[np.float32],
) -> BoneSurface:
    """Map marching-cubes output (padded, downsampled k, j, i) to LPS mm.

    The linear part of the whole map is ``M = A · diag(f) · P`` (P swaps k, j, i → i, j, k);
    normals transform with ``M⁻ᵀ``; and when ``det M < 0`` the map mirrors the mesh, so the
    triangle winding is reversed to keep faces counter-clockwise seen from outside.
    """
    f = np.array(f_ijk, dtype=np.float64)
    swap = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]], dtype=np.float64)  # kji → ijk
    linear = volume.affine_lps[:3, :3] @ np.diag(f) @ swap
    # a downsampled voxel's centre sits at the centre of its block in the full grid
    offset_ijk = (f - 1.0) / 2.0 - f  # the "- f" undoes the one-voxel padding
    origin = volume.to_lps(offset_ijk)
    vertices = verts_kji.astype(np.float64) @ linear.T + origin
    normals = normals_kji.astype(np.float64) @ np.linalg.inv(linear)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    faces = np.asarray(faces, dtype=np.int32)
    # skimage winds faces clockwise seen from the side the normals point to (see tests)
    if np.linalg.det(linear) > 0:
        faces = faces[:, ::-1]
    return BoneSurface(
        vertices.astype(np.float32), np.ascontiguousarray(faces), normals.astype(np.float32)
    )
