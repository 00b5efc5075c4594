"""The CT volume in DICOM patient coordinates (LPS, millimetres).

Array order, stated once for the whole project: ``array[k, j, i]`` is slice ``k``, row ``j``,
column ``i`` — the order in which DICOM stores a series. The affine maps the column vector
``(i, j, k, 1)`` (column, row, slice, 1) to ``(x, y, z, 1)`` in LPS mm: +x towards the
patient's left, +y towards posterior, +z towards superior (head).

Voxel indices exist only inside this module's methods; everything else in VertebroPlan speaks
LPS millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from planning.errors import SeriesError

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PatientInfo:
    """Identifying data copied from the CT. Kept in memory only; never logged.

    ``repr`` hides every field so that a volume printed into a log or a traceback cannot
    leak the patient's identity.
    """

    name: str = ""
    patient_id: str = ""
    birth_date: str = ""
    sex: str = ""
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    series_description: str = ""
    accession_number: str = ""
    referring_physician: str = ""
    study_id: str = ""
    institution: str = ""

    @staticmethod
    def dicom_keywords() -> dict[str, str]:
        """Each field's DICOM keyword, by field name: the one place that says which header
        attribute a field is copied from."""
        return dict(_PATIENT_KEYWORDS)

    def __repr__(self) -> str:
        return "PatientInfo(<hidden>)"

    __str__ = __repr__


_PATIENT_KEYWORDS = {
    "name": "PatientName", "patient_id": "PatientID", "birth_date": "PatientBirthDate",
    "sex": "PatientSex", "study_date": "StudyDate", "study_time": "StudyTime",
    "study_description": "StudyDescription", "series_description": "SeriesDescription",
    "accession_number": "AccessionNumber", "referring_physician": "ReferringPhysicianName",
    "study_id": "StudyID", "institution": "InstitutionName",
}


@dataclass(frozen=True)
class SourceInstance:
    """One DICOM image a volume was built from, so exported objects (an SR of a plan) can
    reference the CT series instance by instance."""

    sop_class_uid: str
    sop_instance_uid: str


def validate_affine(affine_lps: FloatArray) -> FloatArray:
    """Return a float64 copy of a 4×4 index→LPS affine, refusing degenerate matrices.

    Why eager: a singular or non-finite affine would silently put every point of a plan in
    the wrong place, so it is refused here, where the volume is built.
    """
    a = np.asarray(affine_lps, dtype=np.float64)
    if a.shape != (4, 4):
        raise SeriesError(f"affine_lps must be 4×4, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise SeriesError("affine_lps contains non-finite values")
    if not np.allclose(a[3], [0.0, 0.0, 0.0, 1.0]):
        raise SeriesError("affine_lps last row must be [0, 0, 0, 1]")
    spacing = np.linalg.norm(a[:3, :3], axis=0)
    if np.any(spacing <= 1e-6):
        raise SeriesError(f"affine_lps has a zero-length axis (spacing {spacing.tolist()})")
    if abs(np.linalg.det(a[:3, :3])) < 1e-9:
        raise SeriesError("affine_lps is singular (voxel axes are coplanar)")
    return a.copy()


def inverse_affine(matrix: FloatArray) -> FloatArray:
    """Inverse of a square matrix (an affine, or its 3×3 part) as float64."""
    return np.asarray(np.linalg.inv(matrix), dtype=np.float64)


def kji_transform(target_to_source_ijk: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(matrix, offset)`` for `scipy.ndimage.affine_transform` on ``[k, j, i]`` arrays,
    from a 4×4 map of target ``(i, j, k)`` indices to source ``(i, j, k)`` indices.

    Why one place: arrays are stored ``[k, j, i]`` while affines act on ``(i, j, k)``, and
    every resampling between two grids must reverse both the matrix and the offset.
    """
    reverse = np.eye(3)[::-1]
    m = np.asarray(target_to_source_ijk, dtype=np.float64)
    return reverse @ m[:3, :3] @ reverse, reverse @ m[:3, 3]


@dataclass(eq=False)
class Volume:
    """A scalar CT volume: int16 Hounsfield units plus where every voxel is in the patient.

    Parameters
    ----------
    array
        ``array[k, j, i]`` (slice, row, column), int16 HU.
    affine_lps
        4×4 mapping ``(i, j, k, 1)`` → LPS mm.
    """

    array: NDArray[np.int16]
    affine_lps: FloatArray
    modality: str = "CT"
    study_uid: str = ""
    series_uid: str = ""
    frame_of_reference_uid: str = ""
    patient: PatientInfo = field(default_factory=PatientInfo)
    source: str = ""
    warnings: list[str] = field(default_factory=list)
    source_instances: tuple[SourceInstance, ...] = ()
    """The DICOM images the volume was built from, in slice order (empty for NIfTI)."""

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise SeriesError(f"a volume needs a 3-D array, got {self.array.ndim}-D")
        if self.array.dtype != np.int16:
            raise SeriesError(f"a volume's array must be int16 HU, got {self.array.dtype}")
        self.affine_lps = validate_affine(self.affine_lps)
        self._inverse = np.linalg.inv(self.affine_lps)

    def __repr__(self) -> str:
        return (
            f"Volume(size={self.size}, spacing_mm={np.round(self.spacing_mm, 3).tolist()}, "
            f"modality={self.modality!r})"
        )

    # ---- shape and spacing -------------------------------------------------------------
    @property
    def size(self) -> tuple[int, int, int]:
        """(columns, rows, slices) — the i, j, k extents."""
        k, j, i = self.array.shape
        return (i, j, k)

    @property
    def spacing_mm(self) -> FloatArray:
        """Voxel spacing along (column, row, slice) in mm, from the affine."""
        return np.linalg.norm(self.affine_lps[:3, :3], axis=0)

    @property
    def direction(self) -> FloatArray:
        """3×3 matrix whose columns are the unit LPS directions of i, j and k."""
        return self.affine_lps[:3, :3] / self.spacing_mm

    @property
    def origin_lps(self) -> FloatArray:
        """LPS position of the centre of voxel (0, 0, 0)."""
        return self.affine_lps[:3, 3].copy()

    # ---- coordinate transforms -------------------------------------------------------
    def to_lps(self, index_ijk: ArrayLike3) -> FloatArray:
        """Continuous (i, j, k) index or an (N, 3) array of them → LPS mm."""
        ijk = np.asarray(index_ijk, dtype=np.float64)
        return ijk @ self.affine_lps[:3, :3].T + self.affine_lps[:3, 3]

    def to_index(self, point_lps: ArrayLike3) -> FloatArray:
        """LPS mm (a point or an (N, 3) array) → continuous (i, j, k) index."""
        p = np.asarray(point_lps, dtype=np.float64)
        return p @ self._inverse[:3, :3].T + self._inverse[:3, 3]

    def contains(self, point_lps: ArrayLike3) -> bool | NDArray[np.bool_]:
        """True where the point lies within the voxel grid (centres ± half a voxel)."""
        ijk = self.to_index(point_lps)
        lim = np.array(self.size, dtype=np.float64) - 0.5
        inside = np.all((ijk >= -0.5) & (ijk <= lim), axis=-1)
        return bool(inside) if np.ndim(inside) == 0 else inside

    def hu_at(self, point_lps: ArrayLike3) -> float | None:
        """HU of the voxel nearest to a point, or None outside the volume."""
        ijk = np.rint(self.to_index(point_lps)).astype(int)
        i, j, k = (int(v) for v in ijk)
        ni, nj, nk = self.size
        if 0 <= i < ni and 0 <= j < nj and 0 <= k < nk:
            return float(self.array[k, j, i])
        return None

    def corners_lps(self) -> FloatArray:
        """The 8 corner voxel centres in LPS mm, shape (8, 3)."""
        ni, nj, nk = self.size
        c = np.array(
            [[i, j, k] for i in (0, ni - 1) for j in (0, nj - 1) for k in (0, nk - 1)],
            dtype=np.float64,
        )
        return self.to_lps(c)

    def bounds_lps(self) -> tuple[FloatArray, FloatArray]:
        """Axis-aligned LPS bounding box (min, max) of the voxel centres."""
        c = self.corners_lps()
        return c.min(axis=0), c.max(axis=0)

    def center_lps(self) -> FloatArray:
        """LPS position of the volume's geometric centre."""
        ni, nj, nk = self.size
        return self.to_lps([(ni - 1) / 2, (nj - 1) / 2, (nk - 1) / 2])

    @property
    def hu_range(self) -> tuple[int, int]:
        return int(self.array.min()), int(self.array.max())


ArrayLike3 = FloatArray | list[float] | tuple[float, float, float] | list[list[float]]


def affine_from_dicom(
    first_position_lps: ArrayLike3,
    row_direction: ArrayLike3,
    column_direction: ArrayLike3,
    pixel_spacing_row_col: tuple[float, float],
    slice_step_lps: ArrayLike3,
) -> FloatArray:
    """Build the index→LPS affine from DICOM geometry.

    ``row_direction`` is ImageOrientationPatient[0:3] (the direction in which the column
    index i increases), ``column_direction`` is [3:6] (j increases). PixelSpacing is
    (row spacing = between rows = along j, column spacing = along i). ``slice_step_lps`` is
    the vector from the first sorted slice's position to the second's.
    """
    a = np.eye(4)
    row_sp, col_sp = pixel_spacing_row_col
    a[:3, 0] = np.asarray(row_direction, dtype=np.float64) * col_sp
    a[:3, 1] = np.asarray(column_direction, dtype=np.float64) * row_sp
    a[:3, 2] = np.asarray(slice_step_lps, dtype=np.float64)
    a[:3, 3] = np.asarray(first_position_lps, dtype=np.float64)
    return a
