"""Whether a CT's voxels lie inside the envelope on which the automatic anatomy was measured.

Why: the accuracy harness (`bench/accuracy.py`) measured the automatic anatomy, its fracture
grades and its proposals on voxels of at most 3 mm (re-gridded 0.6–3 mm, turned, mirrored,
cropped), and the canal margin's wall errors come from those storings
(`planning.canal_margin`). Beyond them the method was not measured, and where it was tried
it failed. Both labelled CTs and the phantoms painted from them, stored as axial slices
3.5, 4, 4.25, 4.5, 5 and 6 mm apart (in-plane as scanned; 24 storings):

- a vertebra split or missed on every real VerSe storing and on 3 of 6 of its phantoms;
  two vertebrae missed on the abdomen at 4 mm;
- intact vertebrae graded Genant 2 or 3 on 3 storings and Genant 1 on 3 (the heights of a
  25 mm body are uncertain by up to a slice at each endplate);
- 4 needle tips outside their vertebra, and on the abdomen at 4.25 mm one needle 0.4 mm
  into the reference canal where the checks, on the automatic canal, reported 4.1 mm.

So on coarser voxels (a PET-CT's CT, a 5 mm abdominal series) the automatic anatomy is
shown but not acted on: the level names are uncertain, the bodies are not graded when the
slices along the spine are coarser than `MEASURED_VOXEL_MM`, no needle is proposed
automatically, and the checks caution every path on the automatic canal. A thin-slice
reconstruction of the same scan, or needles placed by hand on an imported segmentation,
lifts all of it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

MEASURED_VOXEL_MM = 3.0  # the coarsest voxels of the harness's storings
TOLERANCE_MM = 0.05  # a 3 mm grid stored as 3.0000002 mm is a 3 mm grid


def voxel_text(spacing_mm: ArrayLike) -> str:
    """"0.8 × 0.8 × 5.0 mm": a grid's voxel as a user reads it."""
    return " × ".join(f"{float(s):.1f}" for s in np.asarray(spacing_mm).ravel()) + " mm"


def coarse_voxels(spacing_mm: ArrayLike) -> str | None:
    """Why the automatic anatomy is not trusted on a grid of ``spacing_mm`` (its voxel's
    edges, any order), in words; None when the grid is within the measured envelope."""
    edges = np.asarray(spacing_mm, dtype=np.float64).ravel()
    if float(edges.max()) <= MEASURED_VOXEL_MM + TOLERANCE_MM:
        return None
    return (f"the CT's voxels are {voxel_text(edges)}, coarser than the "
            f"{MEASURED_VOXEL_MM:.0f} mm on which the automatic anatomy was measured")


def along_spine_mm(affine_lps: ArrayLike) -> float:
    """How far apart the grid's samples lie along the patient's head–feet axis at most:
    the largest head–feet step of one voxel along any array axis (mm). On an axial CT it
    is the slice spacing; stored sagittally, the in-plane spacing."""
    a = np.asarray(affine_lps, dtype=np.float64)
    return float(np.abs(a[2, :3]).max())


def coarse_along_spine(affine_lps: ArrayLike) -> str | None:
    """Why a body's heights cannot be graded on this grid, or None: its samples along the
    spine lie more than `MEASURED_VOXEL_MM` apart."""
    step = along_spine_mm(affine_lps)
    if step <= MEASURED_VOXEL_MM + TOLERANCE_MM:
        return None
    return (f"slices {step:.1f} mm apart along the spine (over {MEASURED_VOXEL_MM:.0f} "
            "mm): heights not graded")
