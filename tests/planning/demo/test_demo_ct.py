"""The demo CT: anatomy where the ground truth says, HU where real CT has them, and files
that round-trip exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from scipy import ndimage

from planning.demo import (
    LABEL_CODES,
    DemoTruth,
    DemoTruthError,
    demo_uids,
    generate_demo_ct,
    load_demo_truth,
    write_demo_ct,
)
from planning.demo.anatomy_specs import spec_by_name
from planning.demo.truth import LevelTruth
from planning.errors import Cancelled
from planning.progress import Progress
from planning.volume import Volume

PLANNED = ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5")
ISTHMUS_WIDTH_MM = {"T10": (6.0, 7.0), "L1": (7.0, 8.0), "L5": (12.0, 15.0)}


@pytest.fixture(scope="module")
def demo(shared_demo_ct) -> tuple[Volume, DemoTruth]:
    return shared_demo_ct


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoTruth, list[str]]:
    out = tmp_path_factory.mktemp("demo_ct")
    messages: list[str] = []
    truth = write_demo_ct(out, Progress(lambda done, total, msg: messages.append(msg)))
    return out, truth, messages


# ---- helpers, all in LPS mm -----------------------------------------------------------
def _sample(array: np.ndarray, affine: np.ndarray, points_lps: np.ndarray, order: int
            ) -> np.ndarray:
    """Values of a [k, j, i] array at LPS points (order 0 nearest, 1 trilinear)."""
    inv = np.linalg.inv(affine)
    ijk = points_lps @ inv[:3, :3].T + inv[:3, 3]
    data = array if order == 0 else array.astype(np.float32)
    return ndimage.map_coordinates(data, ijk[:, ::-1].T, order=order, mode="nearest")


def _local_plane(level: LevelTruth, centre_lps: np.ndarray, half_mm: float = 60.0,
                 step_mm: float = 0.4) -> np.ndarray:
    """LPS points of the level's own axial plane through ``centre``: rows run posterior,
    columns run to the patient's left."""
    u = np.arange(-half_mm, half_mm, step_mm)
    posterior = -level.anterior_lps
    return (centre_lps + u[None, :, None] * level.left_lps
            + u[:, None, None] * posterior)


def _run_length(values: np.ndarray, centre: int, inside: np.ndarray) -> int:
    """Length (in samples) of the run of ``inside`` values that contains ``centre``."""
    mask = np.isin(values, inside)
    if not mask[centre]:
        return 0
    lo = centre
    while lo > 0 and mask[lo - 1]:
        lo -= 1
    hi = centre
    while hi < len(mask) - 1 and mask[hi + 1]:
        hi += 1
    return hi - lo + 1


def _isthmus_midpoint(level: LevelTruth) -> np.ndarray:
    return 0.5 * (level.pedicle("left").isthmus_lps + level.pedicle("right").isthmus_lps)


# ---- levels and frames ------------------------------------------------------------------
def test_levels_run_superior_to_inferior_with_realistic_spacing(demo):
    _, truth = demo
    assert truth.level_names == PLANNED
    z = np.array([lv.centroid_lps[2] for lv in truth.levels])
    assert np.all(np.diff(z) < 0), "T10 must be the most superior level"
    spacing = np.linalg.norm(np.diff([lv.centroid_lps for lv in truth.levels], axis=0), axis=1)
    assert np.all((spacing > 25.0) & (spacing < 40.0)), spacing


def test_level_frames_are_orthonormal_and_anatomical(demo):
    _, truth = demo
    for lv in truth.levels:
        m = np.stack([lv.left_lps, -lv.anterior_lps, lv.superior_lps], axis=1)
        np.testing.assert_allclose(m.T @ m, np.eye(3), atol=1e-9)
        assert np.linalg.det(m) == pytest.approx(1.0)  # left, posterior, superior = LPS-handed
        assert lv.left_lps[0] > 0.99
        assert lv.anterior_lps[1] < -0.9
        assert lv.superior_lps[2] > 0.9


def test_spine_is_curved_in_the_sagittal_plane(demo):
    _, truth = demo
    tilt = {lv.name: np.degrees(np.arctan2(lv.superior_lps[1], lv.superior_lps[2]))
            for lv in truth.levels}
    lordosis = tilt["L2"] - tilt["L5"]  # superior axes turn posteriorly going up the lumbar spine
    assert 15.0 < lordosis < 45.0
    assert tilt["T10"] < tilt["T12"]  # kyphosis: going up, the thoracic axes turn anteriorly
    x = [lv.centroid_lps[0] for lv in truth.levels]
    assert np.ptp(x) < 1.0  # no scoliosis


def test_volume_geometry_and_size(demo):
    volume, _ = demo
    assert volume.array.dtype == np.int16
    assert volume.array.nbytes < 120e6
    np.testing.assert_allclose(volume.spacing_mm, [0.78125, 0.78125, 1.0])
    np.testing.assert_allclose(volume.direction, np.eye(3))  # i → left, j → posterior, k → up
    assert volume.patient.name == "VertebroPlan^Demo"
    assert volume.patient.patient_id == "VP-DEMO-0001"
    assert volume.study_uid == demo_uids()["study_uid"]


# ---- canal --------------------------------------------------------------------------------
def test_canal_lies_behind_each_body(demo):
    volume, truth = demo
    canal = truth.canal_mask()
    k, j, i = np.nonzero(canal)
    pts = volume.to_lps(np.stack([i, j, k], axis=1).astype(float))
    for lv in truth.levels:
        rel = pts - lv.centroid_lps
        near = np.abs(rel @ lv.superior_lps) < 5.0
        assert near.sum() > 500, lv.name
        behind_mm = -(rel[near] @ lv.anterior_lps)
        assert np.median(behind_mm) > 20.0, lv.name
        assert np.median(pts[near, 1]) > lv.centroid_lps[1] + 15.0, lv.name  # +y = posterior


@pytest.mark.parametrize("name", PLANNED)
def test_canal_is_enclosed_by_bone_at_the_pedicles(demo, name):
    """In the vertebra's axial plane through its pedicles, the canal is a closed ring of
    bone: the non-bone region around the canal centre never reaches the plane's edge."""
    _, truth = demo
    lv = truth.level(name)
    plane = _local_plane(lv, _isthmus_midpoint(lv))
    labels = _sample(truth.labels, truth.affine_lps, plane.reshape(-1, 3), 0).reshape(
        plane.shape[:2])
    bone = labels == lv.label_code
    canal = labels == LABEL_CODES["canal"]
    assert canal.sum() * 0.16 > 120.0, "canal cross-section should exceed 1.2 cm²"
    comp, _ = ndimage.label(~bone)
    centre = np.argwhere(canal).mean(axis=0).round().astype(int)
    inner = comp == comp[tuple(centre)]
    assert not (inner[0].any() or inner[-1].any() or inner[:, 0].any() or inner[:, -1].any())


def test_canal_is_enclosed_in_true_axial_slices_where_the_level_is_level(demo):
    """Scanner-axial slices through the pedicles close the ring too, where the level is not
    tilted by more than a few degrees."""
    volume, truth = demo
    checked = 0
    for lv in truth.levels:
        if abs(np.degrees(np.arcsin(lv.superior_lps[1]))) > 7.0:
            continue
        k = round(float(volume.to_index(_isthmus_midpoint(lv))[2]))
        bone = truth.labels[k] == lv.label_code
        comp, _ = ndimage.label(~bone)
        j, i = np.argwhere(truth.labels[k] == LABEL_CODES["canal"]).mean(axis=0).round()
        inner = comp == comp[int(j), int(i)]
        assert not (inner[0].any() or inner[-1].any() or inner[:, 0].any()
                    or inner[:, -1].any()), lv.name
        checked += 1
    assert checked >= 3


# ---- HU -------------------------------------------------------------------------------------
def test_body_hu_cancellous_and_cortical(demo):
    volume, truth = demo
    for lv in truth.levels:
        body = truth.body_mask(lv.name)
        assert 100 <= np.median(volume.array[body]) <= 400, lv.name
        vert = truth.vertebra_mask(lv.name)
        shell = vert & ~ndimage.binary_erosion(vert) & body
        assert np.median(volume.array[shell]) > 700, lv.name


def test_disc_canal_and_muscle_hu(demo):
    volume, truth = demo
    assert 50 <= np.median(volume.array[truth.label_mask("disc")]) <= 150
    sac = truth.canal_mask() & (volume.array > -30)
    assert -5 <= np.median(volume.array[sac]) <= 40
    air = volume.array[:, -3:, :3]  # posterior right corner of the field of view is air
    assert np.median(air) < -950


def test_noise_is_realistic(demo):
    volume, truth = demo
    aorta = truth.label_mask("aorta") & ndimage.binary_erosion(truth.label_mask("aorta"),
                                                               iterations=3)
    sd = float(np.std(volume.array[aorta].astype(float)))
    assert 8.0 < sd < 25.0


# ---- fracture -----------------------------------------------------------------------------
def _body_height_mm(truth: DemoTruth, lv: LevelTruth, y_local_mm: float) -> float:
    """Height of the body label along the level's superior axis, ``y`` mm behind the body
    centroid, 8 mm beside the midline (clear of the basivertebral vein)."""
    step = 0.2
    ts = np.arange(-30.0, 30.0, step)
    heights = []
    for x in (-8.0, 8.0):
        base = lv.centroid_lps + x * lv.left_lps - y_local_mm * lv.anterior_lps
        pts = base + ts[:, None] * lv.superior_lps
        lab = _sample(truth.labels, truth.affine_lps, pts, 0)
        part = _sample(truth.parts, truth.affine_lps, pts, 0)
        inside = ((lab == lv.label_code) & (part == 1)).astype(int)
        heights.append(_run_length(inside, len(ts) // 2, np.array([1])) * step)
    return float(np.mean(heights))


def _wall_heights_mm(truth: DemoTruth, lv: LevelTruth) -> tuple[float, float]:
    """(anterior, posterior) body heights: the tallest label run within 5 mm of each wall,
    i.e. at the rim where the endplates do not dip."""
    half = 0.5 * lv.body_depth_mm
    ys = np.arange(0.0, 5.0, 0.5)
    anterior = max(_body_height_mm(truth, lv, -half + y) for y in ys)
    posterior = max(_body_height_mm(truth, lv, half - y) for y in ys)
    return anterior, posterior


def test_only_l1_is_fractured_with_an_anterior_wedge(demo):
    _, truth = demo
    assert [lv.name for lv in truth.levels if lv.fractured] == ["L1"]
    l1 = truth.fractured_level
    assert 1.0 - l1.anterior_height_mm / l1.posterior_height_mm == pytest.approx(0.35, abs=0.01)
    ant, post = _wall_heights_mm(truth, l1)
    assert 0.25 <= 1.0 - ant / post <= 0.45, (ant, post)
    assert post == pytest.approx(l1.posterior_height_mm, abs=3.5)  # rim is inside the wall
    ant2, post2 = _wall_heights_mm(truth, truth.level("L2"))
    assert abs(1.0 - ant2 / post2) < 0.1, (ant2, post2)


# ---- sidedness and ribs ---------------------------------------------------------------------
def test_aorta_is_on_the_patients_left_and_ivc_on_the_right(demo):
    volume, truth = demo
    midline_x = np.mean([lv.centroid_lps[0] for lv in truth.levels])
    for what, sign in (("aorta", 1.0), ("ivc", -1.0), ("kidney_left", 1.0),
                       ("kidney_right", -1.0), ("spleen", 1.0), ("liver", -1.0)):
        k, j, i = np.nonzero(truth.label_mask(what))
        x = volume.to_lps(np.array([[i.mean(), j.mean(), k.mean()]]))[0, 0]
        assert sign * (x - midline_x) > 5.0, what
    aorta = truth.label_mask("aorta")
    assert np.median(volume.array[aorta]) > 120  # enhanced: visible without labels


def _lateral_box_values(volume: Volume, truth: DemoTruth, lv: LevelTruth) -> tuple[
        np.ndarray, np.ndarray]:
    """HU and labels lateral to the transverse process tips, around the pedicle level."""
    tip = spec_by_name(lv.name).transverse_tip_mm
    centre = _isthmus_midpoint(lv)
    xs = np.concatenate([np.arange(tip + 3.0, tip + 30.0, 0.7),
                         -np.arange(tip + 3.0, tip + 30.0, 0.7)])
    ys, zs = np.arange(-15.0, 35.0, 0.7), np.arange(-8.0, 8.0, 0.7)
    g = np.stack(np.meshgrid(xs, ys, zs, indexing="ij"), axis=-1).reshape(-1, 3)
    pts = (centre + g[:, :1] * lv.left_lps - g[:, 1:2] * lv.anterior_lps
           + g[:, 2:] * lv.superior_lps)
    return (_sample(volume.array, volume.affine_lps, pts, 0),
            _sample(truth.labels, truth.affine_lps, pts, 0))


def test_t12_is_the_last_rib_bearing_vertebra(demo):
    volume, truth = demo
    for lv in truth.levels:
        assert lv.has_ribs == (lv.name in ("T10", "T11", "T12"))
    for name in ("T10", "T11", "T12"):
        _, labels = _lateral_box_values(volume, truth, truth.level(name))
        assert np.count_nonzero(labels == LABEL_CODES["rib"]) > 100, name
    hu, labels = _lateral_box_values(volume, truth, truth.level("L1"))
    assert np.count_nonzero(labels == LABEL_CODES["rib"]) == 0
    assert np.count_nonzero(hu > 400) == 0  # no bone at all lateral to L1's processes


# ---- pedicles -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PLANNED)
def test_pedicle_axes_run_through_bone(demo, name):
    volume, truth = demo
    lv = truth.level(name)
    for p in lv.pedicles:
        assert np.linalg.norm(p.direction_lps) == pytest.approx(1.0)
        assert p.direction_lps @ lv.anterior_lps > 0.8
        medial = -lv.left_lps if p.side == "left" else lv.left_lps
        assert p.direction_lps @ medial > 0.0  # converging towards the midline
        entry_to_isthmus = float((p.isthmus_lps - p.entry_lps) @ p.direction_lps)
        assert 5.0 < entry_to_isthmus < 30.0
        ts = np.arange(-entry_to_isthmus + 1.5, 8.0, 0.5)
        pts = p.isthmus_lps + ts[:, None] * p.direction_lps
        labels = _sample(truth.labels, truth.affine_lps, pts, 0)
        assert np.mean(labels == lv.label_code) > 0.95
        assert np.median(_sample(volume.array, volume.affine_lps, pts, 1)) > 150
        anterior = float((p.anterior_cortex_lps - p.isthmus_lps) @ p.direction_lps)
        assert anterior > 0.8 * lv.body_depth_mm


@pytest.mark.parametrize("name", PLANNED)
def test_isthmus_width_in_label_matches_truth(demo, name):
    _, truth = demo
    lv = truth.level(name)
    step = 0.1
    ts = np.arange(-15.0, 15.0, step)
    for p in lv.pedicles:
        across = np.cross(p.direction_lps, lv.superior_lps)
        pts = p.isthmus_lps + ts[:, None] * across
        labels = _sample(truth.labels, truth.affine_lps, pts, 0)
        width = _run_length(labels, len(ts) // 2, np.array([lv.label_code])) * step
        assert width == pytest.approx(p.isthmus_width_mm, abs=1.3), p.side
        if name in ISTHMUS_WIDTH_MM:
            lo, hi = ISTHMUS_WIDTH_MM[name]
            assert lo <= p.isthmus_width_mm <= hi


# ---- files ----------------------------------------------------------------------------------
def _read_series(folder: Path) -> tuple[np.ndarray, list[pydicom.Dataset]]:
    datasets = [pydicom.dcmread(f) for f in sorted(folder.glob("*.dcm"))]
    normal = np.cross(*np.reshape([float(v) for v in datasets[0].ImageOrientationPatient],
                                  (2, 3)))
    datasets.sort(key=lambda ds: float(np.dot(normal, [float(v) for v in
                                                      ds.ImagePositionPatient])))
    array = np.stack([ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope)
                      + float(ds.RescaleIntercept) for ds in datasets])
    return array, datasets


def test_written_series_equals_the_generated_volume(demo, written):
    volume, _ = demo
    folder, _, messages = written
    array, datasets = _read_series(folder)
    np.testing.assert_array_equal(array, volume.array)  # also proves the generator is deterministic
    first = datasets[0]
    np.testing.assert_allclose([float(v) for v in first.ImagePositionPatient],
                               volume.origin_lps, atol=1e-4)
    np.testing.assert_allclose([float(v) for v in first.ImageOrientationPatient],
                               [1, 0, 0, 0, 1, 0], atol=1e-6)
    np.testing.assert_allclose([float(v) for v in first.PixelSpacing], [0.78125, 0.78125])
    step = (np.array([float(v) for v in datasets[1].ImagePositionPatient])
            - np.array([float(v) for v in first.ImagePositionPatient]))
    np.testing.assert_allclose(step, volume.affine_lps[:3, 2], atol=1e-4)
    assert str(first.PatientName) == "VertebroPlan^Demo"
    assert first.PatientID == "VP-DEMO-0001"
    assert first.PatientBirthDate == "19500101"
    assert first.PatientSex == "F"
    assert first.StudyDescription == "Demo thoracolumbar spine CT (synthetic)"
    assert first.SeriesDescription == "VertebroPlan demo spine"
    uids = demo_uids()
    assert first.StudyInstanceUID == uids["study_uid"]
    assert first.SeriesInstanceUID == uids["series_uid"]
    assert first.FrameOfReferenceUID == uids["frame_of_reference_uid"]
    assert any("Vertebra L1" in m for m in messages)


def test_written_series_loads_through_the_app_loader(demo, written):
    dicom_series = pytest.importorskip("planning.io.dicom_series")
    volume, _ = demo
    folder, _, _ = written
    loaded = dicom_series.load_dicom_folder(folder)
    np.testing.assert_array_equal(loaded.array, volume.array)
    np.testing.assert_allclose(loaded.affine_lps, volume.affine_lps, atol=1e-4)


def test_ground_truth_round_trips(demo, written):
    _, truth = demo
    folder, written_truth, _ = written
    assert (folder / "ground_truth.json").is_file()
    loaded = load_demo_truth(folder)
    assert loaded.to_json() == written_truth.to_json() == truth.to_json()
    np.testing.assert_array_equal(loaded.labels, truth.labels)
    np.testing.assert_array_equal(loaded.parts, truth.parts)
    for a, b in zip(loaded.levels, truth.levels, strict=True):
        np.testing.assert_allclose(a.centroid_lps, b.centroid_lps, atol=1e-4)
        np.testing.assert_allclose(a.pedicle("left").direction_lps,
                                   b.pedicle("left").direction_lps, atol=1e-4)


def test_loading_truth_from_a_folder_without_it_says_so(tmp_path):
    with pytest.raises(DemoTruthError, match="has no demo ground truth"):
        load_demo_truth(tmp_path)


def test_cancel_stops_generation():
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        generate_demo_ct(progress)
