"""Real-world quirks of DICOM folders, each written as real files, each with its verdict.

Every refusal is a `SeriesError` whose message says what is wrong in plain words and names
the folder or the file; every repair the loader makes is reported in ``volume.warnings``.
"""

from __future__ import annotations

import itertools
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from planning.errors import Cancelled, SeriesError
from planning.io.dicom_series import load_dicom_folder, load_series, scan_folder
from planning.progress import Progress
from tests.planning.io.dicom_corpus import (
    COLS,
    NSLICES,
    ROWS,
    SHAPE,
    SeriesUIDs,
    assert_marked_series,
    assert_names,
    assert_slices_match,
    copy_with_new_sop_uid,
    marked_hu,
    normal_of,
    ramp_hu,
    ramp_value,
    rotated_iop,
    stacked_positions,
    warning_with,
    write_axial_series,
    write_ct_series,
    write_localizer,
    write_mr_series,
    write_rgb_series,
)
from tests.planning.io.dicom_corpus_quirks import (
    rewrite_stored_bits,
    truncate_header,
    truncate_pixels,
    write_dicomdir,
    write_enhanced_ct,
    write_non_dicom_files,
)


# ---- folders that hold no usable series ---------------------------------------------------
def test_folder_that_does_not_exist(tmp_path):
    missing = tmp_path / "CT_2024_missing"
    with pytest.raises(SeriesError, match=re.compile("does not exist", re.I)) as exc:
        load_dicom_folder(missing)
    assert_names(str(exc.value), missing)


def test_empty_folder(tmp_path):
    folder = tmp_path / "empty_export"
    folder.mkdir()
    with pytest.raises(SeriesError, match=re.compile("no DICOM images found", re.I)) as exc:
        load_dicom_folder(folder)
    assert_names(str(exc.value), folder)


def test_folder_with_only_non_dicom_files(tmp_path, rng):
    folder = tmp_path / "not_dicom"
    junk = write_non_dicom_files(folder, rng)

    scan = scan_folder(folder)
    assert scan.series == []
    skipped = {p.name: reason for p, reason in scan.skipped}
    assert set(skipped) == {p.name for p in junk}
    for name, reason in skipped.items():
        assert "not a dicom file" in reason.lower(), (name, reason)

    with pytest.raises(SeriesError, match=re.compile("no DICOM images found", re.I)) as exc:
        load_dicom_folder(folder)
    assert_names(str(exc.value), folder)


def test_non_dicom_files_next_to_a_series_are_skipped(tmp_path, rng):
    _, hu, positions = write_axial_series(tmp_path)
    junk = write_non_dicom_files(tmp_path, rng)

    scan = scan_folder(tmp_path)
    assert len(scan.series) == 1
    assert scan.series[0].n_images == NSLICES
    assert {p.name for p, _ in scan.skipped} == {p.name for p in junk}
    assert_slices_match(load_dicom_folder(tmp_path), hu, positions)


def test_patient_cd_with_dicomdir_and_files_without_extension(tmp_path):
    paths, hu, positions = write_axial_series(tmp_path, prefix="IM", extension="")
    write_dicomdir(tmp_path, paths)

    scan = scan_folder(tmp_path)
    assert [s.n_images for s in scan.series] == [NSLICES]
    assert_slices_match(load_dicom_folder(tmp_path), hu, positions)


# ---- several series in one folder ---------------------------------------------------------
@pytest.fixture
def mixed_folder(tmp_path):
    """CT 20 slices, CT 12 slices (other size), MR 25 slices, one study, one folder."""
    study = SeriesUIDs.new().study_uid
    big, small, mr = SeriesUIDs.new(study), SeriesUIDs.new(study), SeriesUIDs.new(study)
    write_axial_series(tmp_path, uids=big, prefix="A", series_number=2, description="big")
    small_pos = stacked_positions((0.0, 0.0, 90.0), (0.0, 0.0, 3.0), 12)
    write_ct_series(
        tmp_path, np.full((12, 16, 20), 100, dtype=np.int16), small_pos,
        uids=small, prefix="B", series_number=3, description="small",
    )
    write_mr_series(tmp_path, 25, uids=mr, series_number=4)
    return tmp_path, big, small, mr


def test_scan_lists_every_series_largest_ct_first(mixed_folder):
    folder, big, small, mr = mixed_folder
    scan = scan_folder(folder)

    assert {s.series_uid for s in scan.series} == {big.series_uid, small.series_uid, mr.series_uid}
    first = scan.series[0]
    assert first.series_uid == big.series_uid
    assert first.modality == "CT"
    assert first.n_images == NSLICES
    assert first.series_number == 2
    assert first.description == "big"
    assert first.study_uid == big.study_uid
    assert len(first.files) == NSLICES
    assert all(Path(f).name.startswith("A") for f in first.files)
    by_uid = {s.series_uid: s for s in scan.series}
    assert by_uid[mr.series_uid].modality == "MR"
    assert by_uid[mr.series_uid].n_images == 25
    assert by_uid[small.series_uid].n_images == 12
    assert scan.skipped == []


def test_default_load_takes_the_largest_ct_and_says_so(mixed_folder):
    folder, big, _, _ = mixed_folder
    volume = load_dicom_folder(folder)

    assert volume.series_uid == big.series_uid
    assert volume.array.shape == SHAPE
    warning_with(volume, "series", "largest")


def test_load_chosen_series_by_uid(mixed_folder):
    folder, _, small, _ = mixed_folder
    volume = load_dicom_folder(folder, series_uid=small.series_uid)

    assert volume.series_uid == small.series_uid
    assert volume.array.shape == (12, 16, 20)
    assert np.all(volume.array == 100)
    assert np.isclose(volume.spacing_mm[2], 3.0)


def test_load_series_from_scan_result(mixed_folder):
    folder, _, small, _ = mixed_folder
    info = next(s for s in scan_folder(folder).series if s.series_uid == small.series_uid)
    volume = load_series(info)
    assert volume.series_uid == small.series_uid
    assert volume.array.shape == (12, 16, 20)


def test_unknown_series_uid_is_refused(mixed_folder):
    folder = mixed_folder[0]
    with pytest.raises(SeriesError) as exc:
        load_dicom_folder(folder, series_uid="1.2.3.4.5.404")
    assert_names(str(exc.value), folder)


def test_mr_only_folder_is_refused(tmp_path):
    folder = tmp_path / "mr_spine"
    write_mr_series(folder, 8)
    with pytest.raises(SeriesError) as exc:
        load_dicom_folder(folder)
    message = str(exc.value)
    assert "MR" in message and "CT" in message, message
    assert_names(message, folder, *folder.iterdir())


def test_rgb_images_are_refused(tmp_path):
    folder = tmp_path / "colour_render"
    paths = write_rgb_series(folder)
    with pytest.raises(SeriesError, match=re.compile(r"RGB|colou?r", re.I)) as exc:
        load_dicom_folder(folder)
    assert_names(str(exc.value), folder, *paths)


# ---- irregular stacks -----------------------------------------------------------------------
def test_localizer_in_the_series_is_excluded(tmp_path):
    uids = SeriesUIDs.new()
    positions = stacked_positions((-10.0, -8.0, 100.0), (0.0, 0.0, 2.0), NSLICES)
    hu = marked_hu(SHAPE)
    write_ct_series(tmp_path, hu, positions, uids=uids)
    write_localizer(tmp_path / "SCOUT.dcm", uids)

    volume = load_dicom_folder(tmp_path)

    assert_marked_series(volume, hu, positions)
    warning_with(volume, "localizer")


def test_duplicate_position_with_new_sop_uid(tmp_path):
    paths, hu, positions = write_axial_series(tmp_path)
    copy_with_new_sop_uid(paths[6], tmp_path / "CT0006_resent.dcm")

    volume = load_dicom_folder(tmp_path)

    assert volume.array.shape == SHAPE
    assert_slices_match(volume, hu, positions)
    warning_with(volume, "duplicate")


def test_exact_copy_of_a_file_is_loaded_once(tmp_path):
    paths, hu, positions = write_axial_series(tmp_path)
    shutil.copy(paths[11], tmp_path / "CT0011 (1).dcm")

    volume = load_dicom_folder(tmp_path)

    assert volume.array.shape == SHAPE
    assert_slices_match(volume, hu, positions)


def test_one_missing_slice_is_interpolated(tmp_path):
    paths, _, positions = write_axial_series(tmp_path, step_mm=2.0)
    gone = 10
    paths[gone].unlink()

    volume = load_dicom_folder(tmp_path)

    assert volume.array.shape == SHAPE
    assert np.isclose(volume.spacing_mm[2], 2.0, atol=1e-6)
    full = ramp_hu([p[2] for p in positions])
    assert_slices_match(volume, full, positions)  # the filled slice is the mean of its neighbours
    warning_with(volume, "missing")


def test_five_consecutive_missing_slices_are_refused(tmp_path):
    folder = tmp_path / "gappy"
    paths, _, _ = write_axial_series(folder)
    for p in paths[8:13]:
        p.unlink()
    with pytest.raises(SeriesError, match=re.compile("missing|gap", re.I)) as exc:
        load_dicom_folder(folder)
    assert_names(str(exc.value), folder)


def test_uneven_spacing_is_resampled_to_a_uniform_step(tmp_path):
    steps = [2.5 if n % 2 == 0 else 3.5 for n in range(NSLICES - 1)]
    z = 100.0 + np.concatenate([[0.0], np.cumsum(steps)])
    positions = [np.array([-10.0, -8.0, zk]) for zk in z]
    write_ct_series(tmp_path, ramp_hu(z), positions)

    volume = load_dicom_folder(tmp_path)

    warning_with(volume, "uneven")
    step = volume.spacing_mm[2]
    # not coarser than the widest gap, not absurdly fine
    assert 1.25 <= step <= 3.5 + 1e-6, step
    nk = volume.array.shape[0]
    origins = volume.to_lps(np.array([[0.0, 0.0, k] for k in range(nk)]))
    assert np.allclose(origins[:, :2], [-10.0, -8.0], atol=1e-6)
    assert origins[:, 2].min() == pytest.approx(z[0], abs=1e-3)
    assert z[-1] - step - 1e-3 <= origins[:, 2].max() <= z[-1] + 1e-3
    # the field is linear in z, so a linear resampling reproduces it to within rounding
    jj, ii = np.mgrid[0:ROWS, 0:COLS]
    for k in range(nk):
        expected = ramp_value(origins[k, 2], ii, jj)
        assert np.abs(volume.array[k] - expected).max() <= 1.0, f"slice {k} at z={origins[k, 2]}"


def test_gantry_tilt_keeps_the_true_slice_step(tmp_path):
    """Positions slide along y by tan(15°)·z while the image plane stays axial."""
    step = np.array([0.0, 2.0 * np.tan(np.deg2rad(15.0)), 2.0])
    positions = stacked_positions((-10.0, -8.0, 100.0), step, NSLICES)
    hu = marked_hu(SHAPE)
    write_ct_series(tmp_path, hu, positions)

    volume = load_dicom_folder(tmp_path)

    column = volume.affine_lps[:3, 2]
    assert np.allclose(column, step, atol=1e-4) or np.allclose(column, -step, atol=1e-4), column
    assert_marked_series(volume, hu, positions)
    warning_with(volume, "tilt", "15")


# ---- Enhanced (multi-frame) CT ---------------------------------------------------------------
def test_enhanced_ct_oblique_frames_in_reverse_order(tmp_path):
    iop = rotated_iop("x", 30.0)
    positions = stacked_positions((-30.0, 10.0, 50.0), 2.5 * normal_of(iop), NSLICES)
    hu = marked_hu(SHAPE)
    reverse = list(range(NSLICES))[::-1]
    write_enhanced_ct(
        tmp_path / "ENH.dcm", hu[reverse], [positions[k] for k in reverse], iop,
        intercept=-1024.0,
    )

    volume = load_dicom_folder(tmp_path)

    assert_marked_series(volume, hu, positions, iop)
    assert np.allclose(volume.spacing_mm, [0.6, 0.8, 2.5], atol=1e-6)


def test_enhanced_ct_with_per_frame_rescale(tmp_path, rng):
    positions = stacked_positions((0.0, 0.0, 0.0), (0.0, 0.0, 1.25), 8)
    hu = rng.integers(-1000, 2000, size=(8, ROWS, COLS)).astype(np.int16)
    intercepts = [-1024.0 - 10 * k for k in range(8)]
    write_enhanced_ct(
        tmp_path / "ENH.dcm", hu, positions, slope=1.0, intercept=intercepts
    )

    volume = load_dicom_folder(tmp_path)

    assert_slices_match(volume, hu, positions)


# ---- rescale and pixel representation ---------------------------------------------------------
def test_slope_2_intercept_minus_1000(tmp_path, rng):
    stored = rng.integers(0, 2000, size=(6, ROWS, COLS))
    hu = (2 * stored - 1000).astype(np.int16)
    positions = stacked_positions((0.0, 0.0, 0.0), (0.0, 0.0, 3.0), 6)
    write_ct_series(tmp_path, hu, positions, slope=2.0, intercept=-1000.0)

    volume = load_dicom_folder(tmp_path)

    assert_slices_match(volume, hu, positions)
    assert volume.hu_range == (int(hu.min()), int(hu.max()))


def test_different_intercept_on_every_slice(tmp_path, rng):
    hu = rng.integers(-1000, 1500, size=(6, ROWS, COLS)).astype(np.int16)
    positions = stacked_positions((0.0, 0.0, 0.0), (0.0, 0.0, 3.0), 6)
    write_ct_series(tmp_path, hu, positions, intercept=[-1024.0 - 7 * k for k in range(6)])

    assert_slices_match(load_dicom_folder(tmp_path), hu, positions)


@pytest.mark.parametrize("bits_stored", [16, 12])
def test_signed_pixel_data(tmp_path, rng, bits_stored):
    low, high = (-1024, 3071) if bits_stored == 16 else (-2048, 2047)
    hu = rng.integers(low, high + 1, size=(5, ROWS, COLS)).astype(np.int16)
    hu[0, 0, :2] = (low, high)
    positions = stacked_positions((0.0, 0.0, 0.0), (0.0, 0.0, 2.0), 5)
    write_ct_series(
        tmp_path, hu, positions, signed=True, slope=1.0, intercept=0.0, bits_stored=bits_stored
    )

    assert_slices_match(load_dicom_folder(tmp_path), hu, positions)


def test_bits_above_high_bit_are_ignored(tmp_path, rng):
    """Unsigned 12 bits stored, with old overlay bits set above HighBit (PS3.5 8.1.1)."""
    hu = rng.integers(-1024, 3072, size=(5, ROWS, COLS)).astype(np.int16)
    positions = stacked_positions((0.0, 0.0, 0.0), (0.0, 0.0, 2.0), 5)
    paths = write_ct_series(tmp_path, hu, positions, bits_stored=12, intercept=-1024.0)
    for p in paths:
        rewrite_stored_bits(p, lambda w: w | 0xA000)

    assert_slices_match(load_dicom_folder(tmp_path), hu, positions)


def test_signed_12_bit_data_without_sign_extension(tmp_path, rng):
    """Signed 12 bits stored in 16: the sign lives in bit 11, bits 12-15 are zero."""
    hu = rng.integers(-2048, 2048, size=(5, ROWS, COLS)).astype(np.int16)
    hu[0, 0, :3] = (-2048, -1, 2047)
    positions = stacked_positions((0.0, 0.0, 0.0), (0.0, 0.0, 2.0), 5)
    paths = write_ct_series(
        tmp_path, hu, positions, signed=True, bits_stored=12, slope=1.0, intercept=0.0
    )
    for p in paths:
        rewrite_stored_bits(p, lambda w: w & 0x0FFF)

    assert_slices_match(load_dicom_folder(tmp_path), hu, positions)


# ---- broken files -------------------------------------------------------------------------------
def test_file_with_truncated_header_is_skipped_and_named(tmp_path):
    paths, hu, positions = write_axial_series(tmp_path)
    broken = truncate_header(paths[-1])

    scan = scan_folder(tmp_path)
    reasons = {p.name: r for p, r in scan.skipped}
    assert broken.name in reasons
    assert re.search("unreadable|truncated", reasons[broken.name], re.I), reasons[broken.name]
    assert scan.series[0].n_images == NSLICES - 1

    volume = load_dicom_folder(tmp_path)
    assert_slices_match(volume, hu[:-1], positions[:-1])
    warning_with(volume, broken.name)


def test_file_with_truncated_pixel_data_is_refused_by_name(tmp_path):
    folder = tmp_path / "cut_copy"
    paths, _, _ = write_axial_series(folder)
    broken = truncate_pixels(paths[7])
    with pytest.raises(SeriesError, match=re.compile("pixel", re.I)) as exc:
        load_dicom_folder(folder)
    assert broken.name in str(exc.value)


# ---- progress and cancel ---------------------------------------------------------------------
def _cancelling_progress(calls: list[tuple[int, int]]) -> Progress:
    progress = Progress()

    def callback(done: int, total: int, message: str) -> None:
        calls.append((done, total))
        progress.cancel()

    progress.callback = callback
    return progress


def test_cancel_during_scan(tmp_path):
    write_axial_series(tmp_path)
    calls: list[tuple[int, int]] = []
    with pytest.raises(Cancelled):
        scan_folder(tmp_path, progress=_cancelling_progress(calls))
    assert len(calls) >= 1


def test_cancel_during_load(tmp_path):
    write_axial_series(tmp_path)
    info = scan_folder(tmp_path).series[0]
    calls: list[tuple[int, int]] = []
    with pytest.raises(Cancelled):
        load_series(info, progress=_cancelling_progress(calls))
    assert len(calls) >= 1
    with pytest.raises(Cancelled):
        load_dicom_folder(tmp_path, progress=_cancelling_progress([]))


def _assert_monotonic_to_total(calls: list[tuple[int, int]]) -> None:
    assert calls, "the progress callback was never called"
    done = [d for d, _ in calls]
    assert all(b >= a for a, b in itertools.pairwise(done)), done
    assert all(0 <= d <= t for d, t in calls), calls
    assert calls[-1][0] == calls[-1][1], calls[-1]


def test_progress_counts_up_to_total(tmp_path):
    write_axial_series(tmp_path)
    scan_calls: list[tuple[int, int]] = []
    scan = scan_folder(tmp_path, progress=Progress(lambda d, t, m: scan_calls.append((d, t))))
    _assert_monotonic_to_total(scan_calls)

    load_calls: list[tuple[int, int]] = []
    load_series(scan.series[0], progress=Progress(lambda d, t, m: load_calls.append((d, t))))
    _assert_monotonic_to_total(load_calls)
    assert load_calls[-1][1] >= 1
