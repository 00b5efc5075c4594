"""The re-storings of the accuracy harness: the same patient on other grids.

Why apart from `bench.accuracy`: these make the family (rotated, re-spaced, mirrored,
sagittal and coronal, cropped, cut out, through DICOM); the harness judges what the app
finds on each. The anatomy stays put in LPS, so the truth moves with every storing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from pydicom.uid import JPEG2000Lossless

from planning.anatomy.model import Anatomy, crop_affine
from planning.volume import Volume, kji_transform

CUT_OUT_MM = (100.0, 90.0, 70.0)  # left–right, front–back, along the spine: a lumbar
# vertebra with its transverse processes, body front to spinous tip, and a disc each way

def _regrid(volume: Volume, affine: np.ndarray, shape_kji: tuple[int, int, int]) -> Volume:
    from scipy import ndimage

    matrix, offset = kji_transform(np.linalg.inv(volume.affine_lps) @ affine)
    out = ndimage.affine_transform(volume.array.astype(np.float32), matrix, offset,
                                   output_shape=shape_kji, order=1, mode="constant",
                                   cval=-1000.0, prefilter=False)
    return _restored(np.rint(out).astype(np.int16), affine)


def _restored(array: np.ndarray, affine: np.ndarray) -> Volume:
    """A re-stored copy of the CT: its own (fixed) UIDs, so that nothing mistakes it for
    the original series."""
    return Volume(array, affine, study_uid="2.25.11", series_uid="2.25.12",
                  frame_of_reference_uid="2.25.13")


def _rotation(axis: int, deg: float) -> np.ndarray:
    a = np.radians(deg)
    r = np.eye(3)
    i, j = [x for x in range(3) if x != axis]
    r[i, i], r[i, j], r[j, i], r[j, j] = np.cos(a), -np.sin(a), np.sin(a), np.cos(a)
    return r


def _covering(volume: Volume, rotation: np.ndarray, spacing: float
              ) -> tuple[np.ndarray, tuple[int, int, int]]:
    lo, hi = volume.bounds_lps()
    centre = (lo + hi) / 2.0
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                        for z in (lo[2], hi[2])])
    half = np.abs((corners - centre) @ rotation).max(axis=0)
    n = np.ceil(2 * half / spacing).astype(int) + 1
    affine = np.eye(4)
    affine[:3, :3] = rotation * spacing
    affine[:3, 3] = centre - affine[:3, :3] @ ((n - 1) / 2.0)
    return affine, (int(n[2]), int(n[1]), int(n[0]))


def rotated(volume: Volume, axis: int, deg: float, spacing: float | None = None) -> Volume:
    """The CT on a grid rotated by ``deg`` about LPS axis ``axis`` (0 x, 1 y, 2 z)."""
    step = spacing or float(volume.spacing_mm.min())
    return _regrid(volume, *_covering(volume, _rotation(axis, deg), step))


def respaced(volume: Volume, spacing: float) -> Volume:
    return _regrid(volume, *_covering(volume, np.eye(3), spacing))


def flipped(volume: Volume, axis_kji: int) -> Volume:
    """The same patient with one array axis stored the other way round."""
    n = volume.array.shape[axis_kji]
    to_old = np.eye(4)
    col = 2 - axis_kji
    to_old[col, col] = -1.0
    to_old[col, 3] = n - 1
    return _restored(np.ascontiguousarray(np.flip(volume.array, axis_kji)),
                     volume.affine_lps @ to_old)


def restacked(volume: Volume, slice_axis_lps: int) -> Volume:
    """Stored as sagittal (slices along x, ``0``) or coronal (along y, ``1``) images."""
    directions = np.abs(volume.direction)
    col_of = [int(np.argmax(directions[a])) for a in range(3)]  # LPS axis → i/j/k column
    want = [a for a in (0, 1, 2) if a != slice_axis_lps] + [slice_axis_lps]  # new i, j, k
    order_ijk = [col_of[a] for a in want]
    perm_kji = [2 - order_ijk[2], 2 - order_ijk[1], 2 - order_ijk[0]]
    array = np.ascontiguousarray(np.transpose(volume.array, perm_kji))
    affine = volume.affine_lps.copy()
    affine[:3, :3] = volume.affine_lps[:3, order_ijk]
    return _restored(array, affine)


def thin_slab(volume: Volume, truth: Anatomy, names: list[str], height_mm: float,
              slice_mm: float) -> Volume:
    """Axial slices ``slice_mm`` apart, ``height_mm`` in all, centred between the bodies of
    ``names``, the CT's own in-plane spacing (a thin crop, as a radiographer sends it)."""
    centre = np.mean([truth.levels[n].centroid_lps for n in names], axis=0)
    lo, hi = volume.bounds_lps()
    step = float(volume.spacing_mm[:2].min())
    n_x, n_y = (int(np.ceil((hi[a] - lo[a]) / step)) + 1 for a in (0, 1))
    n_z = round(height_mm / slice_mm)
    affine = np.diag([step, step, slice_mm, 1.0])
    affine[:3, 3] = [lo[0], lo[1], centre[2] - slice_mm * (n_z - 1) / 2.0]
    return _regrid(volume, affine, (n_z, n_y, n_x))


def through_dicom(volume: Volume, transfer_syntax: str | None = None) -> Volume:
    """The CT written as a DICOM series (compressed with ``transfer_syntax`` when given)
    and read back by the app's own loader: what a PACS export gives."""
    import tempfile

    import pydicom

    from planning.io.dicom_series import load_dicom_folder
    from planning.io.dicom_write import write_series

    with tempfile.TemporaryDirectory(prefix="vp-accuracy-") as tmp:
        paths = write_series(volume, tmp)
        if transfer_syntax is not None:
            for path in paths:
                ds = pydicom.dcmread(path)
                ds.compress(transfer_syntax)
                ds.save_as(path, enforce_file_format=True)
        return load_dicom_folder(tmp)


def cropped_to_levels(volume: Volume, truth: Anatomy, first: int, count: int,
                      through_mm: float = 0.0) -> Volume:
    """The slab of ``count`` truth levels from the ``first`` (cranial first), widened by
    half a disc; ``through_mm`` > 0 cuts that far into the cranial vertebra instead."""
    names = list(truth.levels)[first: first + count]
    z = [truth.levels[n].centroid_lps[2] for n in names]
    top = max(z) + (14.0 if through_mm <= 0 else -through_mm)
    bottom = min(z) - 14.0
    lo, hi = volume.bounds_lps()
    inv = np.linalg.inv(volume.affine_lps)
    corners = np.array([[x, y, zz] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                        for zz in (bottom, top)])
    ijk = corners @ inv[:3, :3].T + inv[:3, 3]
    a = np.clip(np.floor(ijk.min(axis=0)).astype(int), 0, None)
    b = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + 1, np.array(volume.size))
    box = (slice(a[2], b[2]), slice(a[1], b[1]), slice(a[0], b[0]))
    return _restored(np.ascontiguousarray(volume.array[box]),
                     crop_affine(volume.affine_lps, box))


def thick_slices(volume: Volume, slice_mm: float) -> Volume:
    """Axial slices ``slice_mm`` apart over the whole CT, its finest spacing in plane: a
    thick-slice series (a PET-CT's CT, a routine 5 mm abdomen)."""
    lo, hi = volume.bounds_lps()
    step = np.array([float(volume.spacing_mm.min())] * 2 + [slice_mm])
    n = np.floor((hi - lo) / step).astype(int) + 1
    affine = np.diag([*step, 1.0])
    affine[:3, 3] = lo
    return _regrid(volume, affine, (int(n[2]), int(n[1]), int(n[0])))


def noisier(volume: Volume, sigma_hu: float, seed: int = 1) -> Volume:
    """The CT with Gaussian noise of ``sigma_hu`` added to every voxel: a low-dose scan (a
    PET-CT's CT) of the same patient."""
    rng = np.random.default_rng(seed)
    noisy = volume.array + rng.normal(0.0, sigma_hu, volume.array.shape)
    return _restored(np.clip(np.rint(noisy), -1024, 3071).astype(np.int16), volume.affine_lps)


def bent(volume: Volume, shift_mm: float, order: int = 1) -> Volume:
    """The CT bent sideways along the spine, as a scoliotic spine is: every voxel moved
    towards the patient's left by ``shift_mm`` · sin(π (z − z_top) / (z_bottom − z_top)),
    so the middle of the scan moves most and its ends not at all. Not a rigid move: the
    labels must be bent the same way (``order`` 0 for them, `bent_labels`)."""
    from scipy import ndimage

    a = volume.affine_lps
    k, j, i = np.indices(volume.array.shape, dtype=np.float64)
    z = a[2, 0] * i + a[2, 1] * j + a[2, 2] * k + a[2, 3]
    shift = shift_mm * np.sin(np.pi * (z - z.min()) / max(float(np.ptp(z)), 1e-6))
    inv = np.linalg.inv(a)  # an LPS shift along x moves the index by inv[:3, 0] per mm
    source = [k - inv[2, 0] * shift, j - inv[1, 0] * shift, i - inv[0, 0] * shift]
    cval = -1000.0 if order else 0.0
    out = ndimage.map_coordinates(volume.array.astype(np.float32), source, order=order,
                                  mode="constant", cval=cval)
    return _restored(np.rint(out).astype(volume.array.dtype), a)


def bent_labels(labels: Volume, shift_mm: float) -> Volume:
    """``labels`` bent as `bent` bends the CT (nearest label, so codes stay codes)."""
    return bent(labels, shift_mm, order=0)


def cut_out(volume: Volume, truth: Anatomy, name: str, spacing: float = 1.5) -> Volume:
    """A box of `CUT_OUT_MM` around vertebra ``name`` (its whole label, centred across
    the patient, its body's centre along the spine) on a ``spacing`` grid: no skin, no
    ribs' length, the neighbours cut above and below — a radiologist's cut-out."""
    code = truth.levels[name].code
    kji = np.argwhere(truth.labels == code)
    xyz = kji[:, ::-1] @ truth.affine_lps[:3, :3].T + truth.affine_lps[:3, 3]
    centre = (xyz.min(axis=0) + xyz.max(axis=0)) / 2.0
    centre[2] = truth.levels[name].centroid_lps[2]
    half = np.asarray(CUT_OUT_MM) / 2.0
    n = np.floor(2.0 * half / spacing).astype(int) + 1
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = centre - half
    return _regrid(volume, affine, (int(n[2]), int(n[1]), int(n[0])))


def storings(ct: Volume, truth: Anatomy, fast: bool) -> Iterator[tuple[str, Callable[[], Volume]]]:
    """(name, make) for every re-storing of the family; ``fast``: a few of them."""
    yield "as stored", lambda: ct
    if fast:
        yield "rotated 15° about x, 2 mm", lambda: rotated(ct, 0, 15.0, 2.0)
        yield "1.5 mm grid", lambda: respaced(ct, 1.5)
        return
    for axis, name in enumerate("xyz"):
        for deg in (5.0, 10.0, 15.0, 20.0, 25.0):
            yield f"rotated {deg:.0f}° about {name}", (
                lambda a=axis, d=deg: rotated(ct, a, d, max(1.5, float(ct.spacing_mm.min()))))
    for axis, name in ((0, "x"), (1, "y")):  # finer than the CT and tilted: the ring is
        # seldom closed on one slice of such a grid
        yield f"rotated 15° about {name}, 1.5 mm", (
            lambda a=axis: rotated(ct, a, 15.0, min(1.5, float(ct.spacing_mm.min()))))
    for spacing in (0.6, 1.0, 1.5, 2.0, 3.0):
        yield f"{spacing} mm grid", lambda s=spacing: respaced(ct, s)
    for axis in range(3):
        yield f"stored flipped along array axis {axis}", lambda a=axis: flipped(ct, a)
    yield "stored sagittally", lambda: restacked(ct, 0)
    yield "stored coronally", lambda: restacked(ct, 1)
    n = len(truth.levels)
    for first in range(0, max(1, n - 2), 2):
        yield f"cropped to 3 levels from {list(truth.levels)[first]}", (
            lambda f=first: cropped_to_levels(ct, truth, f, 3))
    yield "cut through a vertebra", lambda: cropped_to_levels(ct, truth, 1, 3, through_mm=8.0)
    middle = list(truth.levels)[n // 2]  # the cut-out around L3, stored sagittally
    yield (f"cut-out around {middle}, 1.5 mm, stored sagittally, no skin",
           lambda: restacked(cut_out(ct, truth, middle), 0))
    for slice_mm in (4.25, 5.0):  # beyond the measured envelope (`planning.anatomy.resolution`)
        yield f"axial slices {slice_mm} mm apart", lambda d=slice_mm: thick_slices(ct, d)
    yield "low dose: noise of 60 HU added", lambda: noisier(ct, 60.0)
    yield "uncompressed DICOM series", lambda: through_dicom(ct)
    yield "JPEG 2000 DICOM, 1 mm grid", lambda: through_dicom(respaced(ct, 1.0), JPEG2000Lossless)
    thoracic = [n for n in truth.levels if n.startswith("T")]
    if thoracic:  # the 40 mm crop: 20 slices of 2 mm, the two lowest thoracic levels
        yield (f"40 mm crop of 2 mm slices through {'–'.join(thoracic[-2:])}, JPEG 2000",
               lambda: through_dicom(thin_slab(ct, truth, thoracic[-2:], 40.0, 2.0),
                                     JPEG2000Lossless))
