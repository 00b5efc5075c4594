"""Geometry of loaded DICOM series against positions computed by hand.

Each case writes a small series with marker voxels, loads it and checks that every marker
lands at the LPS point given by ImagePositionPatient + ImageOrientationPatient + PixelSpacing
(PS3.3 C.7.6.2.1.1), on an identity, a flipped and two oblique series.
"""

from __future__ import annotations

import numpy as np
import pytest

from planning.io.dicom_series import load_dicom_folder, scan_folder
from planning.io.dicom_write import write_series
from planning.volume import Volume, affine_from_dicom
from tests.planning.io.dicom_corpus import (
    COLS,
    NSLICES,
    ROWS,
    SHAPE,
    SeriesUIDs,
    assert_marked_series,
    assert_markers,
    assert_slices_match,
    marked_hu,
    normal_of,
    rotated_iop,
    stacked_positions,
    write_ct_series,
)


def test_identity_axial_series(tmp_path):
    uids = SeriesUIDs.new()
    positions = stacked_positions((-10.0, -8.0, 100.0), (0.0, 0.0, 2.0), NSLICES)
    hu = marked_hu(SHAPE)
    write_ct_series(tmp_path, hu, positions, uids=uids)

    volume = load_dicom_folder(tmp_path)

    assert volume.array.dtype == np.int16
    assert volume.array.shape == SHAPE
    assert_marked_series(volume, hu, positions)
    assert np.allclose(volume.spacing_mm, [0.6, 0.8, 2.0], atol=1e-6)
    assert volume.study_uid == uids.study_uid
    assert volume.series_uid == uids.series_uid
    assert volume.frame_of_reference_uid == uids.frame_of_reference_uid
    assert volume.modality == "CT"
    assert volume.warnings == []


def test_flipped_series_reversed_files_scrambled_instances_mirrored_rows(tmp_path, rng):
    """Columns run anterior (IOP column direction (0,-1,0)); files written head → feet."""
    iop = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0)
    positions = stacked_positions((15.0, 40.0, 250.0), (0.0, 0.0, -2.0), NSLICES)
    hu = marked_hu(SHAPE)
    order = rng.permutation(NSLICES)  # file order unrelated to position
    instance_numbers = rng.permutation(NSLICES) + 1
    write_ct_series(
        tmp_path, hu[order], [positions[k] for k in order], iop,
        instance_numbers=instance_numbers.tolist(),
    )

    volume = load_dicom_folder(tmp_path)

    assert_marked_series(volume, hu, positions, iop)
    assert np.allclose(volume.spacing_mm, [0.6, 0.8, 2.0], atol=1e-6)
    # the slice axis runs along ±z, the column axis along -y (anterior)
    assert np.allclose(np.abs(volume.affine_lps[:3, 2]), [0.0, 0.0, 2.0], atol=1e-6)
    assert volume.warnings == []


@pytest.mark.parametrize("axis", ["z", "x"])
def test_oblique_30_degree_series(tmp_path, rng, axis):
    iop = rotated_iop(axis, 30.0)
    step = 1.5 * normal_of(iop)
    positions = stacked_positions((-20.0, 5.0, -300.0), step, NSLICES)
    hu = marked_hu(SHAPE)
    order = rng.permutation(NSLICES)
    write_ct_series(tmp_path, hu[order], [positions[k] for k in order], iop)

    volume = load_dicom_folder(tmp_path)

    assert_marked_series(volume, hu, positions, iop)
    assert np.allclose(volume.spacing_mm, [0.6, 0.8, 1.5], atol=1e-6)
    # a 30° image plane is not a tilt: the slices are stacked along the normal
    assert not any("tilt" in w.lower() for w in volume.warnings)


def test_slice_spacing_comes_from_positions_not_slice_thickness(tmp_path):
    iop = rotated_iop("x", 30.0)
    positions = stacked_positions((0.0, 0.0, 0.0), 2.0 * normal_of(iop), NSLICES)
    hu = marked_hu(SHAPE)
    paths = write_ct_series(tmp_path, hu, positions, iop, slice_thickness=5.0)

    volume = load_dicom_folder(tmp_path)

    assert np.isclose(volume.spacing_mm[2], 2.0, atol=1e-6)
    assert_markers(volume, positions, iop)
    # the scan reports what the files say (5 mm): it is a label, not the geometry
    info = scan_folder(tmp_path).series[0]
    assert info.n_images == len(paths)
    assert info.slice_thickness_mm == pytest.approx(5.0)


def test_round_trip_through_project_writer_oblique(tmp_path, rng):
    """planning.io.dicom_write → loader gives back the same voxels at the same places."""
    iop = rotated_iop("z", -25.0)
    row, col = np.array(iop[:3]), np.array(iop[3:])
    step = 2.5 * normal_of(iop)
    affine = affine_from_dicom((12.0, -40.0, 80.0), row, col, (0.9, 0.7), step)
    array = rng.integers(-1000, 2000, size=(6, ROWS, COLS)).astype(np.int16)
    source = Volume(array=array, affine_lps=affine)
    write_series(source, tmp_path, instance_order=[3, 0, 5, 1, 4, 2])

    volume = load_dicom_folder(tmp_path)

    positions = [affine[:3, 3] + k * step for k in range(6)]
    assert_slices_match(volume, array, positions)
    assert np.allclose(volume.spacing_mm, source.spacing_mm, atol=1e-6)
    for ijk in ([0, 0, 0], [COLS - 1, 0, 3], [5, ROWS - 1, 5]):
        lps = source.to_lps(ijk)
        assert volume.hu_at(lps) == source.hu_at(lps)
