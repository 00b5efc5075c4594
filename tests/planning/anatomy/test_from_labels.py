"""Anatomy from imported label maps: tables, the derived canal, bodies, frames, resampling.

A small synthetic spine (three ring-and-body vertebrae) runs everywhere, on an identity, a
flipped and an oblique grid; the real abdominal CT with its TotalSegmentator labels
(../shared/data/ct-abdomen-3mm) runs where the shared data is present.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from planning.anatomy import (
    DEMO,
    TOTALSEGMENTATOR,
    VERSE,
    Anatomy,
    LabelMapError,
    LabelTable,
    LabelTableError,
    anatomy_from_label_map,
    load_label_table,
)
from planning.errors import Cancelled, VertebroPlanError
from planning.io.nifti import load_nifti
from planning.progress import Progress
from planning.volume import Volume

DATA = Path(__file__).resolve().parents[4] / "shared" / "data" / "ct-abdomen-3mm"
needs_data = pytest.mark.skipif(not (DATA / "labels.nii.gz").exists(),
                                reason="shared data absent")
REAL_LEVELS = ["T12", "L1", "L2", "L3", "L4", "L5", "S1"]


# ---- helpers (LPS mm) -----------------------------------------------------------------
def _points_lps(anatomy: Anatomy, mask: np.ndarray) -> np.ndarray:
    k, j, i = np.nonzero(mask)
    return anatomy.to_lps(np.stack([i, j, k], axis=1).astype(np.float64))


def _volume_points_lps(volume: Volume, mask: np.ndarray) -> np.ndarray:
    k, j, i = np.nonzero(mask)
    return volume.to_lps(np.stack([i, j, k], axis=1).astype(np.float64))


def _centre_lps(volume: Volume) -> np.ndarray:
    return volume.center_lps()


def _grid_lps(shape_kji: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    """LPS of every voxel centre of a grid, shape (nk, nj, ni, 3)."""
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape_kji), indexing="ij")
    ijk = np.stack([i, j, k], axis=-1).astype(np.float64)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def _relabel(volume: Volume, affine: np.ndarray, shape_kji: tuple[int, int, int],
             source: str) -> Volume:
    """``volume``'s labels resampled (nearest, through LPS) onto another grid."""
    to_src = np.linalg.inv(volume.affine_lps) @ affine
    rev = np.eye(3)[::-1]
    array = ndimage.affine_transform(volume.array, rev @ to_src[:3, :3] @ rev,
                                     rev @ to_src[:3, 3], output_shape=shape_kji, order=0,
                                     output=np.int16)
    return Volume(array, affine, source=source)


# ---- a synthetic spine, defined in LPS so that any grid can sample it -------------------
SYNTHETIC_LEVELS = {"L1": (31, 60.0), "L2": (30, 25.0), "L3": (29, -10.0)}  # code, z mm
CANAL_CENTRE_Y = 10.0
CANAL_RADIUS = 8.0


BODY_CENTRE_Y = CANAL_CENTRE_Y - CANAL_RADIUS - 16.0  # the body's back is the canal's front


def _synthetic_labels(affine: np.ndarray, shape_kji: tuple[int, int, int]) -> np.ndarray:
    """Bodies (r 16 mm, 26 mm tall) in front, rings (canal r 8 mm, 14 mm tall) behind, with
    a spinous process; 9 mm discs between the bodies."""
    p = _grid_lps(shape_kji, affine)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    out = np.zeros(shape_kji, dtype=np.int16)
    ring_r = np.hypot(x, y - CANAL_CENTRE_Y)
    for code, zc in SYNTHETIC_LEVELS.values():
        body = (np.hypot(x, y - BODY_CENTRE_Y) <= 16.0) & (np.abs(z - zc) <= 13.0)
        ring = ((ring_r > CANAL_RADIUS) & (ring_r <= 13.0) & (np.abs(z - zc) <= 7.0)
                & (y >= CANAL_CENTRE_Y - CANAL_RADIUS - 1.0))
        spinous = (np.abs(x) <= 2.5) & (y > 20.0) & (y < 40.0) & (np.abs(z - zc) <= 7.0)
        out[body | ring | spinous] = code
    return out


def _synthetic_grid(kind: str) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A 1 mm grid covering x, y ∈ [−45, 45], z ∈ [−30, 80]: identity, flipped or oblique."""
    shape = (111, 91, 91)
    a = np.eye(4)
    if kind == "identity":
        a[:3, 3] = [-45.0, -45.0, -30.0]
    elif kind == "flipped":  # i → the right, j → anterior, k → the feet
        a[:3, :3] = np.diag([-1.0, -1.0, -1.0])
        a[:3, 3] = [45.0, 45.0, 80.0]
    else:  # oblique: rotated 30° about z and tilted 10° about x
        rz, rx = np.radians(30.0), np.radians(10.0)
        r = (np.array([[np.cos(rz), -np.sin(rz), 0], [np.sin(rz), np.cos(rz), 0], [0, 0, 1]])
             @ np.array([[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]]))
        a[:3, :3] = r
        a[:3, 3] = [0.0, 0.0, 25.0] - r @ np.array([45.0, 45.0, 55.0])
    return a, shape


@pytest.fixture(scope="module", params=["identity", "flipped", "oblique"])
def synthetic(request: pytest.FixtureRequest) -> Anatomy:
    affine, shape = _synthetic_grid(request.param)
    ct = Volume(np.zeros(shape, dtype=np.int16), affine)
    labels = Volume(_synthetic_labels(affine, shape), affine, source=request.param)
    return anatomy_from_label_map(ct, labels, TOTALSEGMENTATOR)


def test_synthetic_spine_levels_frames_and_bodies(synthetic: Anatomy) -> None:
    assert synthetic.level_names() == ["L1", "L2", "L3"]
    for name, g in synthetic.levels.items():
        zc = SYNTHETIC_LEVELS[name][1]
        np.testing.assert_allclose(g.centroid_lps, [0.0, BODY_CENTRE_Y, zc], atol=0.5)
        np.testing.assert_allclose(g.superior_lps, [0, 0, 1], atol=0.03)
        np.testing.assert_allclose(g.anterior_lps, [0, -1, 0], atol=0.03)
        np.testing.assert_allclose(g.left_lps, [1, 0, 0], atol=0.03)


def test_synthetic_canal_is_the_ring_hole_and_bridges_the_gaps(synthetic: Anatomy) -> None:
    canal = _points_lps(synthetic, synthetic.canal)
    radial = np.hypot(canal[:, 0], canal[:, 1] - CANAL_CENTRE_Y)
    assert radial.max() < CANAL_RADIUS + 1.5
    assert not (synthetic.canal & (synthetic.labels > 0)).any()
    # a continuous tube from the top of L1's ring to the bottom of L3's, through the discs
    top, bottom = SYNTHETIC_LEVELS["L1"][1] + 7, SYNTHETIC_LEVELS["L3"][1] - 7
    for z in np.arange(bottom, top, 2.0):
        at = np.abs(canal[:, 2] - z) < 0.6
        area = at.sum() * np.prod(synthetic.spacing_mm) / 1.2  # a 1.2 mm slab
        assert 0.6 * np.pi * CANAL_RADIUS**2 < area < 1.3 * np.pi * CANAL_RADIUS**2, z


# ---- label tables ---------------------------------------------------------------------
def test_presets_map_codes_to_levels() -> None:
    assert load_label_table("totalsegmentator") is TOTALSEGMENTATOR
    assert load_label_table("VerSe") is VERSE
    assert TOTALSEGMENTATOR.levels[26] == "S1" and TOTALSEGMENTATOR.levels[31] == "L1"
    assert TOTALSEGMENTATOR.levels[43] == "T1" and TOTALSEGMENTATOR.levels[50] == "C1"
    assert 79 in TOTALSEGMENTATOR.canal_hint_codes
    assert VERSE.levels[1] == "C1" and VERSE.levels[19] == "T12" and VERSE.levels[24] == "L5"
    assert VERSE.levels[26] == "S1"
    assert set(VERSE.unnamed_vertebrae) == {25, 28}
    assert DEMO.levels[20] == "L1" and 100 in DEMO.canal_codes and 101 in DEMO.disc_codes


def test_json_tables_either_way_round(tmp_path: Path) -> None:
    by_name = tmp_path / "by_name.json"
    by_name.write_text(json.dumps({"L1": 31, "l2": 30, "canal": 100, "disc": [101, 102]}))
    by_code = tmp_path / "by_code.json"
    by_code.write_text(json.dumps({"31": "L1", "30": "L2", "100": "canal", "101": "disc",
                                   "102": "disc", "25": "L6"}))
    a, b = load_label_table(by_name), load_label_table(str(by_code))
    assert dict(a.levels) == dict(b.levels) == {31: "L1", 30: "L2"}
    assert a.canal_codes == b.canal_codes == {100}
    assert a.disc_codes == b.disc_codes == {101, 102}
    assert set(b.unnamed_vertebrae) == {25}
    assert a.name == "by_name.json"


@pytest.mark.parametrize(("content", "fragment"), [
    ("{not json", "cannot be read as a JSON label table"),
    ("[31, 30]", "expected a non-empty JSON object"),
    ("{}", "expected a non-empty JSON object"),
    ('{"L1": 31, "L2": 31}', "code 31 is given more than one meaning"),
    ('{"31": "L1", "30": "L1"}', "level L1 is given more than one code"),
    ('{"L7": 31}', "'L7' is not a vertebral level"),
    ('{"L1": "thirty"}', '"L1" must map to a label code'),
    ('{"L1": 0}', "label code 0 is out of range"),
    ('{"canal": 100}', "it names no vertebral level"),
])
def test_bad_table_files_are_refused_naming_the_file(tmp_path: Path, content: str,
                                                     fragment: str) -> None:
    path = tmp_path / "my_table.json"
    path.write_text(content)
    with pytest.raises(LabelTableError) as info:
        load_label_table(path)
    assert str(path) in str(info.value) and fragment in str(info.value)
    assert isinstance(info.value, VertebroPlanError) and isinstance(info.value, ValueError)


def test_unknown_preset_or_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LabelTableError, match="neither a label table preset"):
        load_label_table(tmp_path / "nowhere.json")
    with pytest.raises(LabelTableError, match="'totalsegmentor'"):
        load_label_table("totalsegmentor")


# ---- the real CT ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def real() -> dict[str, Volume]:
    return {name: load_nifti(DATA / f"{name}.nii.gz") for name in ("ct", "labels", "bodies")}


@pytest.fixture(scope="module")
def real_anatomy(real: dict[str, Volume]) -> Anatomy:
    return anatomy_from_label_map(real["ct"], real["labels"], TOTALSEGMENTATOR)


@pytest.fixture(scope="module")
def real_with_bodies(real: dict[str, Volume]) -> Anatomy:
    return anatomy_from_label_map(real["ct"], real["labels"], TOTALSEGMENTATOR,
                                  bodies=real["bodies"])


@needs_data
def test_real_levels_and_the_partial_t11(real_anatomy: Anatomy) -> None:
    assert real_anatomy.level_names() == REAL_LEVELS
    assert any(w.startswith("T11 is only partly in the scan") for w in real_anatomy.warnings)
    assert 33 not in np.unique(real_anatomy.labels)  # T11's code is not in the labels


@needs_data
def test_real_vertebrae_are_kept_whole_and_bodies_match(real: dict[str, Volume],
                                                        real_anatomy: Anatomy,
                                                        real_with_bodies: Anatomy) -> None:
    labels, bodies = real["labels"], real["bodies"]
    for name in REAL_LEVELS:
        code = TOTALSEGMENTATOR.code_of(name)
        whole = labels.array == code
        assert real_anatomy.vertebra_mask(name).sum() == whole.sum(), name
        np.testing.assert_allclose(_points_lps(real_anatomy, real_anatomy.vertebra_mask(name))
                                   .mean(axis=0),
                                   _volume_points_lps(labels, whole).mean(axis=0), atol=1e-6)
        body_centroid = _volume_points_lps(labels, whole & (bodies.array == 1)).mean(axis=0)
        with_map = real_with_bodies.levels[name]
        np.testing.assert_allclose(with_map.centroid_lps, body_centroid, atol=1e-6)
        # the body split off at the canal lands within one voxel (3 mm) of the body map's
        split = real_anatomy.levels[name]
        assert np.linalg.norm(split.centroid_lps - body_centroid) < 3.0, name
        assert (real_with_bodies.bodies & real_with_bodies.vertebra_mask(name)).sum() > 1000
    assert real_with_bodies.discs is not None and real_with_bodies.discs.sum() > 1000


@needs_data
@pytest.mark.parametrize("name", ["L1", "L2", "L3", "L4", "L5"])
def test_real_canal_is_behind_each_lumbar_body(real_anatomy: Anatomy, name: str) -> None:
    g = real_anatomy.levels[name]
    canal = _points_lps(real_anatomy, real_anatomy.canal)
    local = g.to_local(canal)
    near = np.abs(local[:, 2]) <= 4.5
    assert near.sum() >= 10, f"no canal at {name}"
    centre = canal[near].mean(axis=0)
    assert centre[1] > g.centroid_lps[1] + 10.0, f"{name}: canal not posterior of the body"
    assert abs(centre[0] - g.centroid_lps[0]) < 10.0, f"{name}: canal not on the midline"
    assert local[near, 1].max() < 0.0
    assert g.left_lps[0] > 0.95 and g.superior_lps[2] > 0.85 and g.confidence == 1.0


@needs_data
def test_real_canal_size_content_and_no_bone(real: dict[str, Volume],
                                            real_anatomy: Anatomy) -> None:
    ct, labels = real["ct"], real["labels"]
    canal = _points_lps(real_anatomy, real_anatomy.canal)
    z_l3 = real_anatomy.levels["L3"].centroid_lps[2]
    at_l3 = np.abs(canal[:, 2] - z_l3) < 1.5  # the axial CT slice through mid-L3
    area_mm2 = at_l3.sum() * 9.0
    assert 150.0 <= area_mm2 <= 600.0, area_mm2
    ijk = np.rint(ct.to_index(canal)).astype(int)
    hu = ct.array[ijk[:, 2], ijk[:, 1], ijk[:, 0]]
    assert np.median(hu) < 100.0
    assert not labels.array[ijk[:, 2], ijk[:, 1], ijk[:, 0]].any()  # no vertebra, not even T11


# ---- the label map on other grids -----------------------------------------------------
@needs_data
def test_flipped_transposed_shifted_grid_gives_the_same_anatomy(real: dict[str, Volume],
                                                                real_anatomy: Anatomy) -> None:
    labels = real["labels"]
    _, nj, ni = labels.array.shape
    array = np.ascontiguousarray(labels.array[3:, ::-1, ::-1].transpose(0, 2, 1))
    to_old = np.array([[0, -1, 0, ni - 1], [-1, 0, 0, nj - 1], [0, 0, 1, 3], [0, 0, 0, 1]],
                      dtype=np.float64)  # new (i, j, k, 1) → old (i, j, k, 1)
    moved = Volume(array, labels.affine_lps @ to_old, source="flipped.nii.gz")
    anatomy = anatomy_from_label_map(real["ct"], moved, TOTALSEGMENTATOR)
    assert anatomy.level_names() == REAL_LEVELS
    for name, g in real_anatomy.levels.items():
        np.testing.assert_allclose(anatomy.levels[name].centroid_lps, g.centroid_lps, atol=1e-6)
    assert anatomy.canal.sum() == real_anatomy.canal.sum()


@needs_data
def test_coarser_flipped_grid_gives_the_same_levels(real: dict[str, Volume],
                                                   real_anatomy: Anatomy) -> None:
    labels = real["labels"]
    nk, _, ni = labels.array.shape
    array = np.ascontiguousarray(labels.array[::-2, ::2, ::-2])
    to_old = np.array([[-2, 0, 0, ni - 1], [0, 2, 0, 0], [0, 0, -2, nk - 1], [0, 0, 0, 1]],
                      dtype=np.float64)
    coarse = Volume(array, labels.affine_lps @ to_old, source="coarse.nii.gz")
    anatomy = anatomy_from_label_map(real["ct"], coarse, TOTALSEGMENTATOR)
    assert anatomy.level_names() == REAL_LEVELS
    for name, g in real_anatomy.levels.items():  # within one voxel of the coarse map (6 mm)
        assert np.linalg.norm(anatomy.levels[name].centroid_lps - g.centroid_lps) < 6.0, name


@needs_data
def test_oblique_grid_gives_the_same_levels(real: dict[str, Volume],
                                           real_anatomy: Anatomy) -> None:
    """Labels resampled onto a 2 mm grid rotated 25° about z and 10° about x."""
    ct = real["ct"]
    rz, rx = np.radians(25.0), np.radians(10.0)
    r = (np.array([[np.cos(rz), -np.sin(rz), 0], [np.sin(rz), np.cos(rz), 0], [0, 0, 1]])
         @ np.array([[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]]))
    affine = np.eye(4)
    affine[:3, :3] = 2.0 * r
    affine[:3, 3] = _centre_lps(ct) - affine[:3, :3] @ np.full(3, 100.0)
    oblique = _relabel(real["labels"], affine, (200, 200, 200), "oblique.nii.gz")
    anatomy = anatomy_from_label_map(ct, oblique, TOTALSEGMENTATOR)
    assert anatomy.level_names() == REAL_LEVELS
    for name, g in real_anatomy.levels.items():
        assert np.linalg.norm(anatomy.levels[name].centroid_lps - g.centroid_lps) < 3.0, name


@needs_data
def test_label_map_of_another_place_is_refused(real: dict[str, Volume]) -> None:
    labels = real["labels"]
    far = labels.affine_lps.copy()
    far[:3, 3] += [0.0, 0.0, 1000.0]
    with pytest.raises(LabelMapError, match=r"'far\.nii\.gz'.*does not overlap the CT"):
        anatomy_from_label_map(real["ct"], Volume(labels.array, far, source="far.nii.gz"),
                               TOTALSEGMENTATOR)


@needs_data
def test_wrong_table_is_refused(real: dict[str, Volume]) -> None:
    only_c1 = LabelTable("cervical", {200: "C1"})
    with pytest.raises(LabelMapError, match=r"holds none of the vertebra codes.*26"):
        anatomy_from_label_map(real["ct"], real["labels"], only_c1)


@needs_data
def test_verse_l6_is_bone_but_not_a_level(real: dict[str, Volume],
                                          real_anatomy: Anatomy) -> None:
    """The same spine in VerSe codes, with S1 relabelled as a sixth lumbar vertebra."""
    ts_to_verse = {31: 20, 30: 21, 29: 22, 28: 23, 27: 24, 26: 25, 32: 19, 33: 18}
    lut = np.zeros(128, dtype=np.int16)
    for ts, vs in ts_to_verse.items():
        lut[ts] = vs
    labels = real["labels"]
    verse = Volume(lut[labels.array], labels.affine_lps, source="verse.nii.gz")
    anatomy = anatomy_from_label_map(real["ct"], verse, VERSE)
    assert anatomy.level_names() == REAL_LEVELS[:-1]
    assert any("L6" in w for w in anatomy.warnings)
    assert anatomy.canal.sum() == real_anatomy.canal.sum()  # its bone still shapes the canal


@needs_data
def test_progress_is_reported_and_cancel_stops(real: dict[str, Volume]) -> None:
    messages: list[str] = []
    anatomy_from_label_map(real["ct"], real["labels"], TOTALSEGMENTATOR,
                           Progress(lambda done, total, msg: messages.append(msg)))
    assert messages[0] == "Placing the labels on the CT" and messages[-1] == "Anatomy ready"
    progress = Progress()
    progress.callback = lambda done, total, msg: progress.cancel()
    with pytest.raises(Cancelled):
        anatomy_from_label_map(real["ct"], real["labels"], TOTALSEGMENTATOR, progress)


def test_spinal_cord_label_joins_the_canal() -> None:
    """TotalSegmentator's spinal_cord (79) lies inside the canal: it is canal, never a level."""
    affine, shape = _synthetic_grid("identity")
    array = _synthetic_labels(affine, shape)
    p = _grid_lps(shape, affine)
    cord = (np.hypot(p[..., 0], p[..., 1] - CANAL_CENTRE_Y) <= 3.0) & (array == 0)
    array[cord] = 79
    ct = Volume(np.zeros(shape, dtype=np.int16), affine)
    anatomy = anatomy_from_label_map(ct, Volume(array, affine), TOTALSEGMENTATOR)
    cord_in_crop = _relabel(Volume(array, affine), anatomy.affine_lps, anatomy.canal.shape,
                            "cord").array == 79
    assert cord_in_crop.any() and (anatomy.canal | ~cord_in_crop).all()
    assert 79 not in np.unique(anatomy.labels)
    assert anatomy.level_names() == ["L1", "L2", "L3"]
