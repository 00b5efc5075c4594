"""Digitally reconstructed radiographs (DRR): simulated cone-beam fluoroscopy from a CT.

Why: the surgeon checks a vertebroplasty plan on the C-arm, so the workstation shows the
planned needles over the same projection the fluoroscope will show (AP, lateral, oblique).

Model. Each CT voxel gets a linear attenuation coefficient (per mm)::

    mu = MU_WATER_PER_MM * max(0, 1 + HU / 1000) * w(HU)

where ``w`` is 1 below ``BONE_RAMP_HU[0]`` (150 HU), ``bone_weight`` above
``BONE_RAMP_HU[1]`` (400 HU) and linear in between. The bone weight stands in for the
photo-electric effect, which makes bone relatively more opaque at fluoroscopy energies than
at the CT's effective energy; it also makes the vertebrae stand out as on a real C-arm.
A pixel's value is the line integral of ``mu`` along the ray from the X-ray source to the
pixel's centre (dimensionless, ``-ln`` of the transmitted fraction).

Geometry (`DrrGeometry`): a point source and a flat detector, all in patient LPS mm. The
image is seen from the detector looking back towards the source, as radiographs are read:
in an AP view (source posterior, detector anterior, up = head) image columns run towards the
patient's left, so the patient's right is on the image's left, like the coronal MPR view; in a
lateral view with the source on the patient's right, columns run towards posterior, like the
sagittal MPR view. Image pixel ``(x, y)`` is column ``x`` (right) and row ``y`` (down), centres
at integers, the detector centre at the middle of the image.

Speed: the CT is first reduced to an `AttenuationVolume` of about 2 mm voxels (block mean
of ``mu``, which keeps line integrals), once per CT and bone weight; the caller keeps it.
A render then samples that volume on planes parallel to the detector, from the source
outwards: the rays cross each such plane on a regular grid, so each plane is one
``scipy.ndimage.affine_transform`` (trilinear, coordinates computed in C). Rays are traced
about half an attenuation voxel apart at the CT and the image between them interpolated. No
thread pool: scipy 1.17's geometric transforms hold the GIL (two threads measured slower
than one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from planning.reslice import check_image_size, unit_vector
from planning.result_memo import MEMO
from planning.volume import FloatArray, Volume, inverse_affine, validate_affine

Float32Array = NDArray[np.float32]

MU_WATER_PER_MM = 0.02
"""Linear attenuation of water at a fluoroscopy beam's effective energy (~60 keV), 1/mm."""
BONE_RAMP_HU = (150.0, 400.0)
"""HU range over which the bone weight rises from 1 to ``bone_weight``."""
DEFAULT_BONE_WEIGHT = 1.5
DEFAULT_VOXEL_MM = 2.0
_SLAB_SLICES = 16  # slices converted to mu at a time, to bound the float32 working memory


def _point(vector: FloatArray | tuple[float, float, float], name: str) -> FloatArray:
    v = np.asarray(vector, dtype=np.float64)
    if v.shape != (3,) or not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be a finite 3-vector, got {vector!r}")
    return v.copy()


@dataclass(frozen=True, eq=False)
class DrrGeometry:
    """A cone-beam projection: point source, flat detector, all in patient LPS mm.

    ``detector_u_lps`` is the unit direction of increasing image column (screen right),
    ``detector_v_lps`` that of increasing row (screen down); they must be perpendicular.
    The detector is ``width_px`` × ``height_px`` square pixels of ``pixel_mm``, centred on
    ``detector_centre_lps``.
    """

    source_lps: FloatArray
    detector_centre_lps: FloatArray
    detector_u_lps: FloatArray
    detector_v_lps: FloatArray
    width_px: int
    height_px: int
    pixel_mm: float

    def __post_init__(self) -> None:
        check_image_size(self.width_px, self.height_px, self.pixel_mm)
        u = unit_vector(self.detector_u_lps, "detector_u_lps")
        v = unit_vector(self.detector_v_lps, "detector_v_lps")
        if abs(float(u @ v)) > 1e-6:
            raise ValueError("detector_u_lps and detector_v_lps must be perpendicular")
        source = _point(self.source_lps, "source_lps")
        centre = _point(self.detector_centre_lps, "detector_centre_lps")
        if abs(float((centre - source) @ np.cross(u, v))) < 1e-6:
            raise ValueError("the source must not lie in the detector plane")
        object.__setattr__(self, "source_lps", source)
        object.__setattr__(self, "detector_centre_lps", centre)
        object.__setattr__(self, "detector_u_lps", u)
        object.__setattr__(self, "detector_v_lps", v)

    @classmethod
    def looking_at(
        cls,
        target_lps: FloatArray | tuple[float, float, float],
        beam_direction_lps: FloatArray | tuple[float, float, float],
        *,
        source_to_detector_mm: float = 1200.0,
        source_to_patient_mm: float = 800.0,
        size_px: int = 512,
        detector_size_mm: float = 300.0,
        up_lps: FloatArray | tuple[float, float, float] = (0.0, 0.0, 1.0),
    ) -> DrrGeometry:
        """A C-arm aimed at ``target_lps`` with the central ray along ``beam_direction_lps``.

        ``beam_direction_lps`` points from the source to the detector (AP fluoroscopy with
        the tube under the table: ``(0, -1, 0)``, posterior → anterior).
        ``source_to_patient_mm`` is the source-to-target distance. The image's "up" is
        ``up_lps`` made perpendicular to the beam (default: the patient's head); columns run
        along ``beam × down`` (see the module docstring for what that means on screen).
        The detector is square, perpendicular to the central ray.
        """
        beam = unit_vector(beam_direction_lps, "beam_direction_lps")
        up = unit_vector(up_lps, "up_lps")
        up_perp = up - (up @ beam) * beam
        if float(np.linalg.norm(up_perp)) < 1e-6:
            raise ValueError("up_lps must not be parallel to the beam direction")
        if not 0 < source_to_patient_mm < source_to_detector_mm:
            raise ValueError(
                "source_to_patient_mm must be positive and less than source_to_detector_mm, "
                f"got {source_to_patient_mm} and {source_to_detector_mm}"
            )
        if size_px < 1 or not detector_size_mm > 0:
            raise ValueError(f"detector size must be positive, got {size_px} px, "
                             f"{detector_size_mm} mm")
        down = -up_perp / float(np.linalg.norm(up_perp))
        right = np.cross(beam, down)
        source = _point(target_lps, "target_lps") - source_to_patient_mm * beam
        return cls(
            source_lps=source,
            detector_centre_lps=source + source_to_detector_mm * beam,
            detector_u_lps=right,
            detector_v_lps=down,
            width_px=int(size_px),
            height_px=int(size_px),
            pixel_mm=float(detector_size_mm) / int(size_px),
        )

    @property
    def normal_lps(self) -> FloatArray:
        """Unit normal of the detector, pointing away from the source."""
        n = np.cross(self.detector_u_lps, self.detector_v_lps)
        return n if float((self.detector_centre_lps - self.source_lps) @ n) > 0 else -n

    @property
    def source_to_detector_mm(self) -> float:
        """Distance from the source to the detector plane, along its normal."""
        return float((self.detector_centre_lps - self.source_lps) @ self.normal_lps)

    @property
    def _centre_px(self) -> FloatArray:
        return np.array([(self.width_px - 1) / 2.0, (self.height_px - 1) / 2.0])

    def pixel_to_lps(self, pixel_xy: FloatArray | tuple[float, float]) -> FloatArray:
        """Image pixel ``(x, y)`` (or an (N, 2) array) → LPS mm of that point on the detector."""
        d = (np.asarray(pixel_xy, dtype=np.float64) - self._centre_px) * self.pixel_mm
        return (self.detector_centre_lps + d[..., 0:1] * self.detector_u_lps
                + d[..., 1:2] * self.detector_v_lps)


def project_points(geometry: DrrGeometry, points_lps: FloatArray) -> FloatArray:
    """Cone-beam projection of LPS points (shape (3,) or (N, 3)) → image pixels ``(x, y)``.

    Returns shape (N, 2) (or (2,) for one point), column then row, in the DRR's pixel frame.
    Points at or behind the source's plane (parallel to the detector) have no projection
    and give NaN.
    """
    p = np.asarray(points_lps, dtype=np.float64)
    if p.shape[-1] != 3:
        raise ValueError(f"points_lps must have shape (3,) or (N, 3), got {p.shape}")
    n = geometry.normal_lps
    rel = p - geometry.source_lps
    depth = rel @ n
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(depth > 1e-9, geometry.source_to_detector_mm / depth, np.nan)
    on_detector = geometry.source_lps + scale[..., None] * rel - geometry.detector_centre_lps
    xy = np.stack([on_detector @ geometry.detector_u_lps, on_detector @ geometry.detector_v_lps],
                  axis=-1)
    out: FloatArray = xy / geometry.pixel_mm + geometry._centre_px
    return out


def hu_to_mu(hu: NDArray[np.generic], bone_weight: float = DEFAULT_BONE_WEIGHT) -> Float32Array:
    """Linear attenuation per mm (float32) of HU values; see the module docstring."""
    h = np.asarray(hu, dtype=np.float32)
    mu = np.maximum(h * np.float32(1e-3) + np.float32(1.0), np.float32(0.0))
    mu *= np.float32(MU_WATER_PER_MM)
    lo, hi = BONE_RAMP_HU
    ramp = np.clip((h - np.float32(lo)) * np.float32(1.0 / (hi - lo)), 0.0, 1.0)
    mu *= ramp * np.float32(bone_weight - 1.0) + np.float32(1.0)
    return mu.astype(np.float32, copy=False)


@dataclass(frozen=True, eq=False)
class AttenuationVolume:
    """A CT as linear attenuation per mm on a coarser grid, ready for `render_drr`.

    ``mu_per_mm[k, j, i]`` float32 (same array order as `Volume`), ``affine_lps`` maps
    ``(i, j, k, 1)`` of this grid to LPS mm. Built once per CT and bone weight and kept by the
    caller (it is derived data: rebuild it when the CT changes).
    """

    mu_per_mm: Float32Array
    affine_lps: FloatArray
    bone_weight: float

    def __post_init__(self) -> None:
        if self.mu_per_mm.ndim != 3 or self.mu_per_mm.dtype != np.float32:
            raise ValueError("mu_per_mm must be a 3-D float32 array")
        object.__setattr__(self, "mu_per_mm", np.ascontiguousarray(self.mu_per_mm))
        object.__setattr__(self, "affine_lps", validate_affine(self.affine_lps))

    @classmethod
    def from_volume(cls, volume: Volume, *, bone_weight: float = DEFAULT_BONE_WEIGHT,
                    voxel_mm: float = DEFAULT_VOXEL_MM) -> AttenuationVolume:
        """Convert HU to attenuation and average blocks of voxels to about ``voxel_mm``.

        Each axis is reduced by the whole factor nearest to ``voxel_mm / spacing`` (at least
        1); the mean of ``mu`` over a block keeps the line integrals through it. The last,
        partial block along an axis is averaged with air (``mu`` = 0) beyond the CT.
        """
        if not bone_weight > 0:
            raise ValueError(f"bone_weight must be positive, got {bone_weight}")
        if not voxel_mm > 0:
            raise ValueError(f"voxel_mm must be positive, got {voxel_mm}")
        return MEMO.remembered(
            "attenuation", (volume.array, volume.affine_lps, float(bone_weight),
                            float(voxel_mm)),
            lambda: cls._averaged(volume, float(bone_weight), float(voxel_mm)))

    @classmethod
    def _averaged(cls, volume: Volume, bone_weight: float, voxel_mm: float
                  ) -> AttenuationVolume:
        """`from_volume`, made (not remembered)."""
        fi, fj, fk = (max(1, math.floor(float(voxel_mm / s) + 0.5)) for s in volume.spacing_mm)
        nk, nj, ni = volume.array.shape
        ok, oj, oi = -(-nk // fk), -(-nj // fj), -(-ni // fi)
        out = np.empty((ok, oj, oi), dtype=np.float32)
        blocks_per_slab = max(1, _SLAB_SLICES // fk)
        buf = np.zeros((blocks_per_slab * fk, oj * fj, oi * fi), dtype=np.float32)
        for k0 in range(0, ok, blocks_per_slab):
            k1 = min(ok, k0 + blocks_per_slab)
            src = volume.array[k0 * fk:k1 * fk]
            part = buf[: (k1 - k0) * fk]
            part[src.shape[0]:] = 0.0
            part[: src.shape[0], :nj, :ni] = hu_to_mu(src, bone_weight)
            out[k0:k1] = part.reshape(k1 - k0, fk, oj, fj, oi, fi).mean(axis=(1, 3, 5))
        # a block's centre is the mean of its voxel centres: index f*n + (f-1)/2
        block = np.eye(4)
        block[:3, :3] = np.diag([fi, fj, fk]).astype(np.float64)
        block[:3, 3] = [(fi - 1) / 2.0, (fj - 1) / 2.0, (fk - 1) / 2.0]
        return cls(out, volume.affine_lps @ block, float(bone_weight))

    @property
    def spacing_mm(self) -> FloatArray:
        """Voxel spacing along (i, j, k) in mm."""
        return np.linalg.norm(self.affine_lps[:3, :3], axis=0)


def render_drr(
    volume: Volume | AttenuationVolume,
    geometry: DrrGeometry,
    *,
    bone_weight: float | None = None,
    voxel_mm: float = DEFAULT_VOXEL_MM,
    step_mm: float | None = None,
) -> Float32Array:
    """Line integrals of attenuation from the source to each detector pixel.

    Parameters
    ----------
    volume
        The CT, or its `AttenuationVolume` (much faster when rendering several views: build
        it once with `AttenuationVolume.from_volume`).
    geometry
        Source and detector in LPS mm.
    bone_weight
        Factor on the attenuation of bone (see the module docstring); only for a `Volume`
        (default `DEFAULT_BONE_WEIGHT`). An `AttenuationVolume` carries its own, and a
        different value here is refused.
    voxel_mm
        Voxel size of the attenuation volume built from a `Volume`.
    step_mm
        Distance between sampling planes along the central ray (default: the attenuation
        volume's smallest spacing). Off-axis rays step ``step_mm / cos(angle)``.

    Returns
    -------
    float32 array ``(height_px, width_px)``, dimensionless (``-ln`` transmission); 0 where a
    ray misses the CT. Use `to_display` for a fluoroscopy-like picture.
    """
    if isinstance(volume, Volume):
        att = AttenuationVolume.from_volume(
            volume, bone_weight=DEFAULT_BONE_WEIGHT if bone_weight is None else bone_weight,
            voxel_mm=voxel_mm)
    else:
        att = volume
        if bone_weight is not None and bone_weight != att.bone_weight:
            raise ValueError(f"bone_weight {bone_weight} differs from the attenuation volume's "
                             f"{att.bone_weight}; rebuild it with AttenuationVolume.from_volume")
    step = float(np.min(att.spacing_mm)) if step_mm is None else float(step_mm)
    if not step > 0:
        raise ValueError(f"step_mm must be positive, got {step_mm}")
    # the window's working views and the report's pictures of a needle are the same views
    return MEMO.remembered("drr", (att, geometry, step), lambda: _traced(att, geometry, step))


def _traced(att: AttenuationVolume, geometry: DrrGeometry, step: float) -> Float32Array:
    """`render_drr`, traced (not remembered)."""
    g = geometry
    n = g.normal_lps
    sdd = g.source_to_detector_mm
    nk, nj, ni = att.mu_per_mm.shape
    box_ijk = np.array([[i, j, k] for i in (-0.5, ni - 0.5) for j in (-0.5, nj - 0.5)
                        for k in (-0.5, nk - 0.5)])
    corners = box_ijk @ att.affine_lps[:3, :3].T + att.affine_lps[:3, 3]
    depths = (corners - g.source_lps) @ n
    d_min, d_max = max(float(depths.min()), 1e-3), min(float(depths.max()), sdd)
    image = np.zeros((g.height_px, g.width_px), dtype=np.float32)
    if d_max <= d_min:
        return image
    n_planes = max(1, math.ceil((d_max - d_min) / step))
    step = (d_max - d_min) / n_planes

    # Rays much closer than the attenuation voxels add time, not detail: trace every
    # ``stride``-th detector pixel (rays ≤ half a voxel apart at the CT's centre) and
    # interpolate the rest bilinearly.
    centre_depth = float((corners.mean(axis=0) - g.source_lps) @ n)
    pixel_at_ct_mm = g.pixel_mm * max(centre_depth, 1e-3) / sdd
    stride = max(1, math.floor(float(np.min(att.spacing_mm)) / 2.0 / pixel_at_ct_mm))
    height, width = -(-g.height_px // stride), -(-g.width_px // stride)

    inv = inverse_affine(att.affine_lps)
    lin = inv[:3, :3]
    src_ijk = lin @ g.source_lps + inv[:3, 3]
    to_centre = lin @ (g.detector_centre_lps - g.source_lps)
    du = lin @ g.detector_u_lps * (g.pixel_mm * stride)
    dv = lin @ g.detector_v_lps * (g.pixel_mm * stride)
    cx, cy = g._centre_px / stride  # the detector centre in traced-grid pixels
    # Memory order matters more than arithmetic here: lay the array out with the index axis
    # most along the beam slowest and the one most along image columns fastest, so each
    # plane reads a nearly contiguous slab (a lateral view on the stored order is 2× slower).
    beam_axis = int(np.argmax(np.abs(lin @ n) * att.spacing_mm))
    others = [a for a in (0, 1, 2) if a != beam_axis]
    others.sort(key=lambda a: abs(float(du[a])))
    rev = [beam_axis, *others]  # index axes (i=0, j=1, k=2) in the order of the array's axes
    mu = np.ascontiguousarray(att.mu_per_mm.transpose([2 - a for a in rev]))
    total = np.zeros((1, height, width), dtype=np.float32)
    sampled = np.empty_like(total)
    matrix = np.zeros((3, 3))
    for p in range(n_planes):
        s = (d_min + (p + 0.5) * step) / sdd
        matrix[:, 1] = (s * dv)[rev]  # output axis 1 = image row y
        matrix[:, 2] = (s * du)[rev]  # output axis 2 = image column x
        offset = (src_ijk + s * (to_centre - cx * du - cy * dv))[rev]
        ndimage.affine_transform(mu, matrix, offset, output=sampled, order=1,
                                 mode="constant", cval=0.0, prefilter=False)
        total += sampled
    traced = total[0]
    if stride > 1:
        rows, cols = np.meshgrid(np.arange(g.height_px, dtype=np.float32) / stride,
                                 np.arange(g.width_px, dtype=np.float32) / stride,
                                 indexing="ij")
        traced = ndimage.map_coordinates(traced, [rows, cols], order=1, mode="nearest",
                                         prefilter=False, output=np.float32)
    image += traced
    # each plane-to-plane step is longer off-axis: |pixel - source| / source-to-detector
    fx, fy = g._centre_px
    xs = (np.arange(g.width_px) - fx) * g.pixel_mm
    ys = (np.arange(g.height_px) - fy) * g.pixel_mm
    off = g.detector_centre_lps - g.source_lps
    a = float(off @ g.detector_u_lps)
    b = float(off @ g.detector_v_lps)
    ray_len = np.sqrt((xs[None, :] + a) ** 2 + (ys[:, None] + b) ** 2 + sdd**2) / sdd
    image *= (step * ray_len).astype(np.float32)
    return image


def to_display(image: Float32Array, *, window: tuple[float, float] | None = None
               ) -> NDArray[np.uint8]:
    """A DRR as an 8-bit fluoroscopy picture: denser (larger line integral) = darker.

    As on a C-arm monitor, air is bright and bone dark. ``window`` is the (low, high) line
    integral shown as white and black; by default it is set automatically like a C-arm's
    brightness control: low = 0 (a ray through air), high = the 99.5th percentile of the
    rays that cross the patient.
    """
    img = np.asarray(image, dtype=np.float32)
    if window is None:
        hit = img[img > 1e-6]
        high = float(np.percentile(hit, 99.5)) if hit.size else 1.0
        window = (0.0, high if high > 0 else 1.0)
    low, high = window
    if not high > low:
        raise ValueError(f"window high must exceed low, got {window}")
    grey = 255.0 * (1.0 - np.clip((img - low) / (high - low), 0.0, 1.0))
    return np.rint(grey).astype(np.uint8)
