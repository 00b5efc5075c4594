"""Anatomy and needle paths as a DICOM SEG: real files on the demo DICOM CT and on a small
oblique, flipped CT, checked by dicom3tools' dciodvfy, read back by highdicom (and dcmqi
when installed), and read back into the same anatomy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from planning.anatomy.from_demo import anatomy_from_demo_truth
from planning.anatomy.from_labels import anatomy_from_label_map
from planning.anatomy.model import Anatomy, VertebraGeometry, crop_affine, crop_box
from planning.errors import Cancelled
from planning.interop.derived_dicom import Authoring
from planning.interop.dicom_codes import LEVEL_CODES
from planning.interop.dicom_seg import SEGExportError, needle_mask, write_plan_seg
from planning.interop.labels_from_seg import (
    CANAL_HINT_LABEL,
    CANAL_LABEL,
    LEVEL_LABEL_CODES,
    SEGFormatError,
    read_seg_labels,
)
from planning.io import load_path
from planning.io.dicom_write import write_series
from planning.plan import Plan, Side, Trajectory
from planning.progress import Progress
from planning.vocabulary import DISCLAIMER
from planning.volume import PatientInfo, Volume
from tests.planning.interop.demo_series import demo_series, pedicle_needle

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
LEVELS = ("L1", "L2")


# ---- the demo CT -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo():
    """The cached demo DICOM series, loaded with the project's loader, and its anatomy."""
    _, truth, volume = demo_series()
    return truth, volume, anatomy_from_demo_truth(truth)


@pytest.fixture(scope="module")
def demo_seg(demo, tmp_path_factory: pytest.TempPathFactory):
    """2 levels × 2 sides (one 13G needle) on the demo anatomy, written as a SEG."""
    truth, volume, anatomy = demo
    needles = [pedicle_needle(truth, lv, side) for lv in LEVELS for side in Side]
    needles[-1] = pedicle_needle(truth, "L2", Side.RIGHT, "13G")
    plan = Plan(study_uid=volume.study_uid, series_uid=volume.series_uid,
                frame_of_reference_uid=volume.frame_of_reference_uid,
                trajectories=tuple(needles))
    path = write_plan_seg(tmp_path_factory.mktemp("seg") / "plan_seg.dcm", volume, anatomy,
                          plan)
    return plan, path, hd.seg.segread(path)


def segment_lps(seg: hd.seg.Segmentation, number: int) -> np.ndarray:
    """LPS mm of one segment's voxels, through highdicom's own geometry (not ours)."""
    vol = seg.get_volume(segment_numbers=[number])
    skr = np.argwhere(vol.array[..., 0] > 0)  # (slice, row, column)
    return skr @ vol.affine[:3, :3].T + vol.affine[:3, 3]


def number_of(seg: hd.seg.Segmentation, label: str) -> int:
    (number,) = [int(s.SegmentNumber) for s in seg.SegmentSequence if s.SegmentLabel == label]
    return number


def assert_needle_drawn(points_lps: np.ndarray, t: Trajectory, spacing_mm: np.ndarray) -> None:
    """Every voxel within radius + one voxel of the needle's line, and the voxels cover
    entry to tip without a gap longer than a voxel."""
    voxel = float(spacing_mm.max())
    d = points_lps - t.entry
    along = d @ t.direction
    perp = np.linalg.norm(d - np.outer(along, t.direction), axis=1)
    assert perp.max() <= t.radius_mm + voxel
    assert along.min() >= -voxel and along.max() <= t.length_mm + voxel
    assert along.min() <= voxel and along.max() >= t.length_mm - voxel
    assert np.diff(np.sort(along)).max() <= voxel


def _tool(name: str) -> str:
    # the dev extras put dcmqi's converters beside this interpreter, maybe not on PATH
    exe = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip(f"{name} is not installed")
    return exe


def dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    """(errors, warnings) that dicom3tools' validator reports."""
    run = subprocess.run([_tool("dciodvfy"), str(path)], capture_output=True, text=True,
                         check=False)
    lines = (run.stdout + run.stderr).splitlines()
    assert lines and lines[0].strip() == "Segmentation", lines[:3]
    return ([line for line in lines if line.startswith("Error")],
            [line for line in lines if line.startswith("Warning")])


def test_dciodvfy_finds_no_errors_in_the_demo_seg(demo_seg) -> None:
    _, path, _ = demo_seg
    errors, warnings = dciodvfy(path)
    assert errors == []
    assert warnings == []


def test_seg_joins_the_ct_study_in_its_frame_of_reference(demo, demo_seg) -> None:
    _, volume, _ = demo
    _, path, seg = demo_seg
    assert seg.SOPClassUID == SEGMENTATION_STORAGE
    assert seg.SegmentationType == "BINARY" and seg.BitsAllocated == 1
    assert seg.FrameOfReferenceUID == volume.frame_of_reference_uid
    assert seg.StudyInstanceUID == volume.study_uid
    assert seg.SeriesInstanceUID != volume.series_uid
    assert seg.ContentDescription == DISCLAIMER
    assert "not for clinical use" in seg.SeriesDescription
    (series,) = seg.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == volume.series_uid
    sop_uids = {i.sop_instance_uid for i in volume.source_instances}
    assert {i.ReferencedSOPInstanceUID for i in series.ReferencedInstanceSequence} <= sop_uids
    # each frame lies on, and refers to, the CT image at its slice
    ct_index = {i.sop_instance_uid: k for k, i in enumerate(volume.source_instances)}
    for frame in seg.PerFrameFunctionalGroupsSequence[::50]:
        ref = frame.DerivationImageSequence[0].SourceImageSequence[0]
        k = ct_index[ref.ReferencedSOPInstanceUID]
        ipp = np.array(frame.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        np.testing.assert_allclose(ipp, volume.to_lps([0, 0, k]), atol=1e-3)
    assert (seg.Rows, seg.Columns) == volume.array.shape[1:]
    # only frames with pixels: far fewer than slices × segments, 1 bit per pixel
    assert seg.NumberOfFrames < volume.array.shape[0] * len(seg.SegmentSequence) / 3
    assert path.stat().st_size < 1.1 * seg.NumberOfFrames * seg.Rows * seg.Columns / 8 + 2e6


def test_segments_are_levels_canal_and_needles_with_their_codes(demo, demo_seg) -> None:
    _, _, anatomy = demo
    plan, _, seg = demo_seg
    labels = [s.SegmentLabel for s in seg.SegmentSequence]
    assert labels == [
        *(f"{lv} vertebra" for lv in ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5")),
        "Spinal canal",
        "L1 left needle path (11G)", "L1 right needle path (11G)",
        "L2 left needle path (11G)", "L2 right needle path (13G)",
    ]
    assert len(anatomy.levels) + 1 + len(plan.trajectories) == len(labels)
    by_label = {s.SegmentLabel: s for s in seg.SegmentSequence}
    l1 = by_label["L1 vertebra"]
    assert l1.SegmentedPropertyTypeCodeSequence[0].CodeValue == "66794005"  # L1 vertebra
    assert l1.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "91723000"
    assert l1.SegmentAlgorithmType == "AUTOMATIC"
    canal = by_label["Spinal canal"]
    assert canal.SegmentedPropertyTypeCodeSequence[0].CodeValue == "61853006"
    needle = by_label["L2 right needle path (13G)"]
    assert needle.SegmentAlgorithmType == "MANUAL"
    assert needle.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "260787004"
    assert needle.SegmentedPropertyTypeCodeSequence[0].CodeValue == "79068005"
    region = needle.AnatomicRegionSequence[0]
    assert region.CodeValue == LEVEL_CODES["L2"].value
    assert region.AnatomicRegionModifierSequence[0].CodeMeaning == "Right"
    assert needle.TrackingID == "Right L2 needle path" and needle.TrackingUID
    assert "13G" in needle.SegmentDescription


def test_vertebra_segments_hold_exactly_the_anatomy_voxels(demo, demo_seg) -> None:
    _, _, anatomy = demo
    _, _, seg = demo_seg
    for level in ("T10", "L1", "L5"):
        points = segment_lps(seg, number_of(seg, f"{level} vertebra"))
        mask = anatomy.vertebra_mask(level)
        assert len(points) == int(mask.sum()), level
        expected = anatomy.to_lps(np.argwhere(mask)[:, ::-1]).mean(axis=0)
        np.testing.assert_allclose(points.mean(axis=0), expected, atol=1e-3)
    canal = segment_lps(seg, number_of(seg, "Spinal canal"))
    assert len(canal) == int(anatomy.canal.sum())


def test_needle_segments_follow_their_needles(demo, demo_seg) -> None:
    _, volume, _ = demo
    plan, _, seg = demo_seg
    for t in plan.trajectories:
        points = segment_lps(seg, number_of(seg, f"{t.level} {t.side.value} needle path "
                                                 f"({t.gauge})"))
        assert_needle_drawn(points, t, volume.spacing_mm)
        # a cylinder, not a line: about π r² L of voxels
        expected = np.pi * t.radius_mm ** 2 * t.length_mm / np.prod(volume.spacing_mm)
        assert 0.8 * expected < len(points) < 1.3 * expected, t.label


def test_round_trip_gives_the_same_anatomy(demo, demo_seg) -> None:
    _, volume, anatomy = demo
    _, path, _ = demo_seg
    labels, table = read_seg_labels(path, volume)
    assert labels.array.shape == volume.array.shape
    np.testing.assert_array_equal(labels.affine_lps, volume.affine_lps)
    assert labels.frame_of_reference_uid == volume.frame_of_reference_uid
    assert sorted(table.levels.values()) == sorted(anatomy.levels)
    assert table.canal_codes == frozenset({CANAL_LABEL})
    assert sum("needle path" in w for w in labels.warnings) == 4  # left out, and said so
    back = anatomy_from_label_map(volume, labels, table)
    assert list(back.levels) == list(anatomy.levels)
    for level in anatomy.levels:
        assert int(back.vertebra_mask(level).sum()) == int(anatomy.vertebra_mask(level).sum())
    assert int(back.canal.sum()) == int(anatomy.canal.sum())


def test_dcmqi_reads_the_same_segments(demo, demo_seg, tmp_path: Path) -> None:
    """QIICR dcmqi (the converter behind 3D Slicer's DICOM SEG support), when installed."""
    nib = pytest.importorskip("nibabel")
    _, volume, anatomy = demo
    plan, path, seg = demo_seg
    run = subprocess.run([_tool("segimage2itkimage"), "--inputDICOM", str(path),
                          "--outputDirectory", str(tmp_path), "-t", "nii"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert len(meta["segmentAttributes"]) == len(seg.SegmentSequence)
    for label, mask_ijk in (("L1 vertebra", anatomy.vertebra_mask("L1")),):
        img = nib.load(tmp_path / f"{number_of(seg, label)}.nii.gz")
        ijk = np.argwhere(np.asarray(img.dataobj) > 0)
        lps = (ijk @ img.affine[:3, :3].T + img.affine[:3, 3]) * [-1.0, -1.0, 1.0]  # RAS→LPS
        assert len(lps) == int(mask_ijk.sum())
        expected = anatomy.to_lps(np.argwhere(mask_ijk)[:, ::-1]).mean(axis=0)
        np.testing.assert_allclose(lps.mean(axis=0), expected, atol=0.01)
    t = plan.trajectories[0]
    img = nib.load(tmp_path / f"{number_of(seg, 'L1 left needle path (11G)')}.nii.gz")
    ijk = np.argwhere(np.asarray(img.dataobj) > 0)
    assert_needle_drawn((ijk @ img.affine[:3, :3].T + img.affine[:3, 3]) * [-1.0, -1.0, 1.0],
                        t, volume.spacing_mm)


# ---- a small oblique, flipped CT --------------------------------------------------------


def oblique_flipped_affine(shape_kji: tuple[int, int, int]) -> np.ndarray:
    """20° about the patient's z, column axis towards the patient's right, slices towards
    the feet; the grid's centre at LPS (0, 0, 0)."""
    c, s = np.cos(np.radians(20.0)), np.sin(np.radians(20.0))
    a = np.eye(4)
    a[:3, :3] = np.array([[-c, -s, 0.0], [s, -c, 0.0], [0.0, 0.0, -1.0]]) @ np.diag(
        [0.9, 1.1, 2.0])
    centre = (np.array(shape_kji[::-1]) - 1) / 2.0
    a[:3, 3] = -a[:3, :3] @ centre
    return a


SMALL_SHAPE = (26, 84, 84)  # k, j, i
L1_Z, L2_Z = 12.0, -12.0


def small_anatomy(ct: Volume) -> Anatomy:
    """Two ellipsoid vertebrae (L1 above L2) and a canal behind them, on a crop of the CT."""
    kji = np.indices(ct.array.shape).reshape(3, -1).T
    x, y, z = ct.to_lps(kji[:, ::-1]).T
    labels = np.zeros(ct.array.shape, dtype=np.int16).ravel()
    for code, z0 in ((20, L1_Z), (21, L2_Z)):
        inside = (x / 16.0) ** 2 + ((y + 2.0) / 13.0) ** 2 + ((z - z0) / 8.0) ** 2 <= 1.0
        labels[inside] = code
    canal = (x ** 2 + (y - 19.0) ** 2 <= 6.0 ** 2) & (np.abs(z) <= 22.0)
    labels, canal = labels.reshape(ct.array.shape), canal.reshape(ct.array.shape)
    box = crop_box([labels > 0, canal], (1, 2, 2), labels.shape)

    def level(name: str, code: int, z0: float) -> VertebraGeometry:
        return VertebraGeometry(name, code, np.array([0.0, -2.0, z0]), np.array([0, 0, 1.0]),
                                np.array([0, -1.0, 0]), np.array([1.0, 0, 0]))

    return Anatomy(affine_lps=crop_affine(ct.affine_lps, box), labels=labels[box],
                   canal=canal[box], bodies=np.zeros_like(canal[box]),
                   levels={"L1": level("L1", 20, L1_Z), "L2": level("L2", 21, L2_Z)})


def small_plan(ct: Volume) -> Plan:
    """Posterolateral to anteromedial needles at L1 (both sides) and L2 (left); patient left
    is LPS +x."""
    def needle(level: str, side: Side, z: float, gauge: str = "11G") -> Trajectory:
        s = side.lps_sign
        return Trajectory(level, side, (s * 28.0, 24.0, z + 2.0), (s * 5.0, -6.0, z), gauge)

    return Plan(frame_of_reference_uid=ct.frame_of_reference_uid, trajectories=(
        needle("L1", Side.LEFT, L1_Z), needle("L1", Side.RIGHT, L1_Z),
        needle("L2", Side.LEFT, L2_Z, "15G")))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory):
    """The small CT written as DICOM and loaded back, its anatomy, plan and SEG."""
    rng = np.random.default_rng(7)
    array = rng.integers(-100, 100, size=SMALL_SHAPE).astype(np.int16)
    source = Volume(array=array, affine_lps=oblique_flipped_affine(SMALL_SHAPE),
                    patient=PatientInfo(name="Müller^Zoë", patient_id="Ø-7", sex="F"))
    folder = tmp_path_factory.mktemp("small_ct")
    write_series(source, folder)
    ct = load_path(folder)
    anatomy, plan = small_anatomy(ct), small_plan(ct)
    path = write_plan_seg(tmp_path_factory.mktemp("small_seg") / "seg.dcm", ct, anatomy, plan)
    return ct, anatomy, plan, path


def test_small_ct_is_oblique_and_flipped(small) -> None:
    ct, *_ = small
    direction = ct.direction
    assert direction[0, 0] < -0.9  # columns run towards the patient's right
    assert abs(direction[1, 0]) > 0.3  # and obliquely
    assert len(ct.source_instances) == ct.array.shape[0]


def test_dciodvfy_finds_no_errors_in_the_oblique_seg(small) -> None:
    *_, path = small
    errors, _ = dciodvfy(path)
    assert errors == []


def test_oblique_seg_geometry_counts_and_sides(small) -> None:
    ct, anatomy, plan, path = small
    seg = hd.seg.segread(path)
    assert seg.FrameOfReferenceUID == ct.frame_of_reference_uid
    assert seg.StudyInstanceUID == ct.study_uid
    assert str(seg.PatientName) == "Müller^Zoë" and seg.PatientID == "Ø-7"
    assert [s.SegmentLabel for s in seg.SegmentSequence] == [
        "L1 vertebra", "L2 vertebra", "Spinal canal", "L1 left needle path (11G)",
        "L1 right needle path (11G)", "L2 left needle path (15G)"]
    for level in ("L1", "L2"):
        points = segment_lps(seg, number_of(seg, f"{level} vertebra"))
        assert len(points) == int(anatomy.vertebra_mask(level).sum()) > 100
        assert abs(points[:, 2].mean() - anatomy.levels[level].centroid_lps[2]) < 1.0
    centroids = {}
    for t in plan.trajectories:
        points = segment_lps(seg, number_of(seg, f"{t.level} {t.side.value} needle path "
                                                 f"({t.gauge})"))
        assert_needle_drawn(points, t, ct.spacing_mm)
        centroids[t.key] = points.mean(axis=0)
    # left stays left: patient left is LPS +x, whatever the image axes do
    assert centroids[("L1", Side.LEFT)][0] > 10.0 > -10.0 > centroids[("L1", Side.RIGHT)][0]


def test_pydicom_seg_reads_the_oblique_seg(small) -> None:
    """pydicom-seg (its pydicom-3 fork, pydicom-seg-rb) builds the same L1 voxels at the
    same LPS places through SimpleITK, when installed."""
    ps = pytest.importorskip("pydicom_seg_rb")
    sitk = pytest.importorskip("SimpleITK")
    _, anatomy, _, path = small
    reader = ps.SegmentReader().read(pydicom.dcmread(path))
    assert sorted(reader.available_segments) == [1, 2, 3, 4, 5, 6]
    image = reader.segment_image(1)  # L1 vertebra
    kji = np.argwhere(sitk.GetArrayFromImage(image) > 0)
    lps = np.array([image.TransformIndexToPhysicalPoint([int(v) for v in p[::-1]])
                    for p in kji])  # ITK's physical space is LPS
    mask = anatomy.vertebra_mask("L1")
    assert len(lps) == int(mask.sum())
    expected = anatomy.to_lps(np.argwhere(mask)[:, ::-1]).mean(axis=0)
    np.testing.assert_allclose(lps.mean(axis=0), expected, atol=1e-3)


def test_thin_needle_on_thick_slices_is_not_broken(small) -> None:
    """A 15G needle (0.9 mm radius) running steeply through 2 mm slices: every slice it
    crosses has voxels of it."""
    ct, *_ = small
    steep = Trajectory("L2", Side.LEFT, (10.0, 0.0, 20.0), (12.0, 1.0, -20.0), "15G")
    box, mask = needle_mask(ct, steep)
    kji = np.argwhere(mask) + [b.start for b in box]
    assert_needle_drawn(ct.to_lps(kji[:, ::-1]), steep, ct.spacing_mm)
    crossed = np.unique(np.rint(ct.to_index(np.array([steep.entry, steep.target]))[:, 2]))
    assert len(np.unique(kji[:, 0])) == abs(int(crossed[-1] - crossed[0])) + 1


def test_anatomy_on_another_grid_is_resampled(small, tmp_path: Path) -> None:
    ct, anatomy, plan, _ = small
    fine = Anatomy(  # the same voxels at half the spacing, so a finer, shifted grid
        affine_lps=anatomy.affine_lps @ np.diag([0.5, 0.5, 0.5, 1.0]),
        labels=anatomy.labels.repeat(2, 0).repeat(2, 1).repeat(2, 2),
        canal=anatomy.canal.repeat(2, 0).repeat(2, 1).repeat(2, 2),
        bodies=anatomy.bodies.repeat(2, 0).repeat(2, 1).repeat(2, 2),
        levels=anatomy.levels)
    fine.affine_lps[:3, 3] -= fine.affine_lps[:3, :3] @ [0.5, 0.5, 0.5]  # same extent
    fine = Anatomy(affine_lps=fine.affine_lps, labels=fine.labels, canal=fine.canal,
                   bodies=fine.bodies, levels=fine.levels)
    seg = hd.seg.segread(write_plan_seg(tmp_path / "seg.dcm", ct, fine, plan))
    points = segment_lps(seg, number_of(seg, "L1 vertebra"))
    mask = anatomy.vertebra_mask("L1")
    assert abs(len(points) - int(mask.sum())) <= 0.02 * mask.sum()
    expected = anatomy.to_lps(np.argwhere(mask)[:, ::-1]).mean(axis=0)
    np.testing.assert_allclose(points.mean(axis=0), expected, atol=0.3)


def test_small_round_trip_and_foreign_frame_refused(demo, small) -> None:
    ct, anatomy, _, path = small
    labels, table = read_seg_labels(path, ct)
    assert dict(table.levels) == {LEVEL_LABEL_CODES["L1"]: "L1", LEVEL_LABEL_CODES["L2"]: "L2"}
    for level in ("L1", "L2"):
        assert int((labels.array == table.code_of(level)).sum()) == int(
            anatomy.vertebra_mask(level).sum())
    _, demo_ct, _ = demo
    with pytest.raises(SEGFormatError, match=r"seg\.dcm': the segmentation belongs to another "
                                             r"CT \(Frame of Reference"):
        read_seg_labels(path, demo_ct)


def test_a_third_party_seg_on_another_grid_is_read_by_its_labels(small, tmp_path: Path
                                                                  ) -> None:
    """TotalSegmentator-style labels ("vertebrae_L1", "spinal_cord"), generic codes, on a
    grid twice as coarse as the CT, made by highdicom from the CT's own files."""
    ct, anatomy, _, _ = small
    images = [pydicom.dcmread(f, stop_before_pixels=True)
              for f in sorted(Path(ct.source).glob("*.dcm"))]
    coarse_affine = ct.affine_lps @ np.diag([2.0, 2.0, 1.0, 1.0])
    shape = (ct.array.shape[0], ct.array.shape[1] // 2, ct.array.shape[2] // 2)
    kji = np.indices(shape).reshape(3, -1).T
    x, y, z = (kji[:, ::-1] @ coarse_affine[:3, :3].T + coarse_affine[:3, 3]).T
    label_map = np.zeros(len(kji), dtype=np.uint8)
    label_map[(x / 16.0) ** 2 + ((y + 2.0) / 13.0) ** 2 + ((z - L1_Z) / 8.0) ** 2 <= 1] = 1
    label_map[(x / 16.0) ** 2 + ((y + 2.0) / 13.0) ** 2 + ((z - L2_Z) / 8.0) ** 2 <= 1] = 2
    label_map[x ** 2 + (y - 19.0) ** 2 <= 3.0 ** 2] = 3
    volume = hd.Volume(label_map.reshape(shape), coarse_affine[:, [2, 1, 0, 3]],
                       coordinate_system="PATIENT",
                       frame_of_reference_uid=ct.frame_of_reference_uid)

    def described(n: int, label: str, kind) -> hd.seg.SegmentDescription:
        return hd.seg.SegmentDescription(
            n, label, codes.SCT.AnatomicalStructure, kind, "AUTOMATIC",
            hd.AlgorithmIdentificationSequence("TotalSegmentator", codes.cid7162.
                                               ArtificialIntelligence, "2"))

    seg = hd.seg.Segmentation(
        images, volume, "BINARY",
        [described(1, "vertebrae_L1", codes.SCT.Vertebra),
         described(2, "vertebrae_L2", codes.SCT.Vertebra),
         described(3, "spinal_cord", codes.SCT.Tissue)],
        hd.UID(), 1, hd.UID(), 1, "TotalSegmentator", "TS", "2", "1")
    seg.save_as(tmp_path / "ts.dcm")
    labels, table = read_seg_labels(tmp_path / "ts.dcm", ct)
    assert sorted(table.levels.values()) == ["L1", "L2"]
    assert table.canal_hint_codes == frozenset({CANAL_HINT_LABEL})
    l1 = labels.array == table.code_of("L1")
    assert abs(int(l1.sum()) - int(anatomy.vertebra_mask("L1").sum())) < 0.1 * l1.sum()
    z = ct.to_lps(np.argwhere(l1)[:, ::-1])[:, 2]
    assert abs(z.mean() - L1_Z) < 1.0


# ---- refusals, errors, progress ---------------------------------------------------------


def test_what_a_seg_cannot_say_is_refused(small, tmp_path: Path) -> None:
    ct, anatomy, plan, _ = small
    nifti_like = Volume(array=ct.array, affine_lps=ct.affine_lps,
                        frame_of_reference_uid=ct.frame_of_reference_uid)
    with pytest.raises(SEGExportError, match="not loaded from DICOM images"):
        write_plan_seg(tmp_path / "a.dcm", nifti_like, anatomy, plan)
    no_frame = Volume(array=ct.array, affine_lps=ct.affine_lps,
                      source_instances=ct.source_instances)
    with pytest.raises(SEGExportError, match="no Frame of Reference UID"):
        write_plan_seg(tmp_path / "b.dcm", no_frame, anatomy, plan)
    filled = Volume(array=ct.array, affine_lps=ct.affine_lps,
                    frame_of_reference_uid=ct.frame_of_reference_uid,
                    source_instances=ct.source_instances[:-2])
    with pytest.raises(SEGExportError, match=r"26 slices were built from 24 DICOM image"):
        write_plan_seg(tmp_path / "c.dcm", filled, anatomy, plan)
    other = Plan(frame_of_reference_uid="1.2.3.4", trajectories=plan.trajectories)
    with pytest.raises(SEGExportError, match=r"made on another CT \(Frame of Reference 1\.2\.3"):
        write_plan_seg(tmp_path / "d.dcm", ct, anatomy, other)
    far = Trajectory("L1", "left", (500.0, 0.0, 0.0), (520.0, 0.0, 0.0))
    with pytest.raises(SEGExportError, match="Left L1 needle lies entirely outside the CT"):
        write_plan_seg(tmp_path / "e.dcm", ct, anatomy, Plan(trajectories=(far,)))
    assert not list(tmp_path.iterdir())


def test_files_that_are_not_segs_name_the_file(small, tmp_path: Path) -> None:
    ct, *_ = small
    with pytest.raises(SEGFormatError, match=r"missing\.dcm' does not exist"):
        read_seg_labels(tmp_path / "missing.dcm", ct)
    text = tmp_path / "notes.txt"
    text.write_text("not DICOM")
    with pytest.raises(SEGFormatError, match=r"notes\.txt' is not a DICOM file"):
        read_seg_labels(text, ct)
    image = sorted(Path(ct.source).glob("*.dcm"))[0]
    with pytest.raises(SEGFormatError, match="is a DICOM CT Image Storage, not a segmentation"):
        read_seg_labels(image, ct)


def test_progress_is_reported_and_cancel_writes_nothing(small, tmp_path: Path) -> None:
    ct, anatomy, plan, _ = small
    seen: list[tuple[int, int]] = []
    progress = Progress(lambda done, total, _: seen.append((done, total)))
    write_plan_seg(tmp_path / "a.dcm", ct, anatomy, plan, progress=progress)
    fractions = [d / t for d, t in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(seen) > 5

    def cancel_midway(done: int, total: int, _: str) -> None:
        if done / total > 0.5:
            cancelling.cancel()

    cancelling = Progress(cancel_midway)
    with pytest.raises(Cancelled):
        write_plan_seg(tmp_path / "b.dcm", ct, anatomy, plan, progress=cancelling)
    assert not (tmp_path / "b.dcm").exists()


def test_deidentify_with_gets_the_finished_dataset(small, tmp_path: Path) -> None:
    ct, anatomy, plan, _ = small
    seen = []

    def anonymise(ds):
        seen.append(ds.SOPClassUID)
        ds.PatientName = "Anonymous"
        return ds

    path = write_plan_seg(tmp_path / "seg.dcm", ct, anatomy, plan,
                          authoring=Authoring(series_number=42, deidentify_with=anonymise))
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert seen == [SEGMENTATION_STORAGE]
    assert str(ds.PatientName) == "Anonymous" and ds.SeriesNumber == 42
