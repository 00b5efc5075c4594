"""The views open on the spine: the seed point lies inside a vertebra."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planning.demo import PART_CODES
from planning.io import load_path
from planning.io.nifti import load_nifti
from planning.spine_seed import spine_seed_lps
from planning.volume import Volume

PART_BODY = PART_CODES["body"]
ABDOMEN = Path(__file__).resolve().parents[3] / "shared" / "data" / "ct-abdomen-3mm"


def test_seed_is_inside_a_vertebra_of_the_demo_even_flipped(shared_demo_ct) -> None:
    volume, truth = shared_demo_ct
    codes = {lv.label_code for lv in truth.levels}
    seed = spine_seed_lps(volume)
    k, j, i = np.rint(volume.to_index(seed)).astype(int)[::-1]
    assert truth.labels[k, j, i] in codes
    assert truth.parts[k, j, i] == PART_BODY  # the views open on a vertebral body
    # the same CT stored with every axis reversed: the same physical place is found
    flip = volume.affine_lps.copy()
    n = np.array(volume.size) - 1
    flip[:3, 3] = volume.to_lps(n)
    flip[:3, :3] = -volume.affine_lps[:3, :3]
    flipped = Volume(np.ascontiguousarray(volume.array[::-1, ::-1, ::-1]), flip)
    other = spine_seed_lps(flipped)
    k, j, i = np.rint(volume.to_index(other)).astype(int)[::-1]
    assert truth.labels[k, j, i] in codes


@pytest.mark.skipif(not (ABDOMEN / "ct.nii.gz").exists(), reason="shared data absent")
def test_seed_is_inside_a_labelled_vertebra_of_the_real_ct() -> None:
    ct = load_path(ABDOMEN / "ct.nii.gz")
    labels = load_nifti(ABDOMEN / "labels.nii.gz")
    assert labels.hu_at(spine_seed_lps(ct)) in set(range(26, 34))


def test_no_bone_gives_the_centre() -> None:
    volume = Volume(np.zeros((5, 6, 7), np.int16), np.eye(4))
    np.testing.assert_allclose(spine_seed_lps(volume), volume.center_lps())


def test_seed_is_on_the_spine_not_on_the_contrast_filled_aorta() -> None:
    """Aorta (300 HU) and vena cava (200 HU) pressed against the bodies of a phantom painted
    from the real abdomen labels: the views still open in a vertebra."""
    from tests.planning import painted_cases as pc

    ph = pc.abdomen_phantom()
    seed = spine_seed_lps(ph.ct)
    k, j, i = np.rint(ph.ct.to_index(seed)).astype(int)[::-1]
    assert not ph.vessels[k, j, i]
    assert ph.labels.array[k, j, i] > 0


def test_seed_on_the_contrast_thorax_is_by_the_bodies_not_in_the_heart() -> None:
    path = ABDOMEN.parent / "ct-thorax-1p5mm" / "ct.nii.gz"
    if not path.exists():
        pytest.skip("shared data absent")
    from planning.anatomy.from_ct import anatomy_from_ct
    from planning.grid_lookup import nearest_voxels

    volume = load_path(path)
    seed = spine_seed_lps(volume)
    anatomy = anatomy_from_ct(volume)
    vessels = anatomy.vessels
    flat, ok = nearest_voxels(np.linalg.inv(vessels.affine_lps), vessels.lumen.shape, seed[None])
    assert ok[0] and not vessels.lumen.ravel()[flat[0]]
    nearest = min(np.linalg.norm((g.centroid_lps - seed)[:2]) for g in anatomy.levels.values())
    assert nearest < 15.0  # in-plane, from a body's centre (it was 38 mm: in the heart)
