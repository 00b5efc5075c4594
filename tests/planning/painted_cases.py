"""Test helper: phantoms painted from the shared label maps (`planning.demo.painted`), made
once per test process; each skips cleanly where ../shared/data is absent."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from planning.anatomy.label_tables import TOTALSEGMENTATOR, VERSE
from planning.anatomy.model import Anatomy
from planning.clearance import SignedDistance, min_along_segment
from planning.demo.painted import PaintedPhantom, paint_from_labels
from planning.grid_lookup import nearest_voxels
from planning.io.nifti import load_nifti
from planning.plan import Trajectory
from planning.volume import inverse_affine

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
ABDOMEN = DATA / "ct-abdomen-3mm"
VERSE_DIR = DATA / "ct-verse012-sagittal"


def need(folder: Path) -> None:
    if not (folder / "labels.nii.gz").exists():
        pytest.skip("shared data absent")


@lru_cache(maxsize=4)
def abdomen_phantom(contrast: bool = True) -> PaintedPhantom:
    """The real abdominal CT's vertebrae (TotalSegmentator labels and body/disc map),
    painted, with an aorta, a vena cava and iliac arteries of 300/200 HU and a CT table."""
    need(ABDOMEN)
    return paint_from_labels(load_nifti(ABDOMEN / "labels.nii.gz"), TOTALSEGMENTATOR,
                             bodies=load_nifti(ABDOMEN / "bodies.nii.gz"),
                             lumen_hu=(300.0, 200.0) if contrast else None, with_table=True)


@lru_cache(maxsize=2)
def verse_phantom() -> PaintedPhantom:
    """The VerSe case's manual labels (T10–L3) painted, vessels of 300/200 HU."""
    need(VERSE_DIR)
    return paint_from_labels(load_nifti(VERSE_DIR / "labels.nii.gz"), VERSE, with_table=True)


def vessel_truth_field(ph: PaintedPhantom) -> SignedDistance:
    return SignedDistance.build(ph.vessels, ph.ct.affine_lps)


def vessel_clearance_mm(field: SignedDistance, t: Trajectory) -> float:
    """The needle's surface to the painted vessels (mm)."""
    return min_along_segment(field, t.entry, t.target)[0] - t.radius_mm


def tip_in_truth_body(ph: PaintedPhantom, t: Trajectory, found: Anatomy) -> bool:
    """Whether the needle's tip lies in the body of the painted vertebra that its level
    is (the truth vertebra nearest to the automatic level's centroid, not the one of the
    same name: the phantom shows neither ribs nor ilia, so its names are uncertain)."""
    a = ph.anatomy
    centre = found.levels[t.level].centroid_lps
    same = min(a.levels.values(), key=lambda g: float(np.linalg.norm(g.centroid_lps - centre)))
    flat, ok = nearest_voxels(a.index_from_lps, a.labels.shape, t.target[None])
    return bool(ok[0] and a.bodies.ravel()[flat[0]]
                and a.labels.ravel()[flat[0]] == same.code)


def truth_vessel_points(ph: PaintedPhantom) -> np.ndarray:
    """LPS centres of the painted lumen's voxels at least 3 mm inside it."""
    k, j, i = np.nonzero(ndimage.binary_erosion(ph.vessels, iterations=2))
    return ph.ct.to_lps(np.stack([i, j, k], 1).astype(float))


def fraction_in(mask: np.ndarray, affine_lps: np.ndarray, points_lps: np.ndarray) -> float:
    flat, ok = nearest_voxels(inverse_affine(affine_lps), mask.shape, points_lps)
    return float((ok & mask.ravel()[flat]).mean()) if len(points_lps) else 0.0
