"""Level names from the landmarks in view: the sacrum, the last rib, the first rib.

The rules (`name_levels`) on made-up chains of vertebrae, then the rib cue itself
(`planning.anatomy.ribs`) on the real CTs of ../shared/data:

- the 3 mm abdomen (T12 partly … S1): ribs leave T12 only (its 12th ribs), none leave
  L1–L5, and the iliac crests beside L4–S1 are not taken for ribs; sacrum and last rib
  agree, so the names are sure;
- the Philips chest DICOM (read by eye, counting from the first rib pair down on a coronal
  maximum projection and the midline sagittal: C7 at the top, cut; T1 … T11; the top of
  T12 at the bottom edge): every vertebra bears ribs and neither end of the rib cage is
  proven in view, so the names are thoracic and marked uncertain — never lumbar;
- the 1.5 mm thorax (T3/T4 … T12 cut by the bottom edge, with contrast and a stent): the
  crop cuts off the back of the chest, so where the rib necks are out of view no absence
  of ribs is claimed; the lowest vertebra is named T12, uncertain.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from planning.anatomy.from_ct import _cues
from planning.anatomy.level_labels import (
    Segment,
    find_discs,
    name_levels,
    segments,
    vertebra_labels,
)
from planning.anatomy.model import LOW_NAME_CONFIDENCE
from planning.anatomy.ribs import rib_roots
from planning.anatomy.spine_column import find_column, working_grid
from planning.io import load_path

DATA = Path(__file__).parents[3] / ".." / "shared" / "data"


def _chain(ribs: list[bool | None], sacrum: bool = False) -> list[Segment]:
    out = [Segment(10 * m, 10 * m + 9, 40.0, rib=r, sacrum=False, cut=False)
           for m, r in enumerate(ribs)]
    if sacrum:
        out.append(Segment(10 * len(ribs), 10 * len(ribs) + 9, 90.0, rib=None, sacrum=True,
                           cut=True))
    return out


def test_sacrum_and_last_rib_agree() -> None:
    naming = name_levels(_chain([True, False, False, False, False, False], sacrum=True))
    assert naming.names == ["T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    assert naming.confidence == 1.0 and not naming.warnings


def test_six_lumbar_vertebrae_are_reported_in_words() -> None:
    naming = name_levels(_chain([True, False, False, False, False, False, False],
                                sacrum=True))
    assert naming.confidence < LOW_NAME_CONFIDENCE
    assert "disagree" in naming.warnings[0] and "transitional" in naming.warnings[0]
    assert naming.names[-1] == "S1"  # the sacrum is followed, and said so
    assert "The sacrum was followed" in naming.warnings[0]


def test_last_rib_alone_names_t12() -> None:
    naming = name_levels(_chain([True, True, False, False]))
    assert naming.names == ["T11", "T12", "L1", "L2"]
    assert naming.confidence == 0.7
    assert "the last rib alone" in naming.warnings[0]


def test_last_rib_needs_a_rib_free_vertebra_below_in_view() -> None:
    """Ribs on the lowest vertebra in view, or an unknown one below: the rib cage may go on."""
    for chain in ([False, True, True], [True, True, None]):
        naming = name_levels(_chain(chain))
        assert naming.confidence < LOW_NAME_CONFIDENCE


def test_first_rib_names_t1_from_the_top() -> None:
    naming = name_levels(_chain([False, False, True, True, True, True]))
    assert naming.names == ["C6", "C7", "T1", "T2", "T3", "T4"]
    assert naming.confidence == 0.7


def test_first_and_last_rib_count_twelve_thoracic() -> None:
    naming = name_levels(_chain([False] + [True] * 12 + [False]))
    assert naming.names[0] == "C7" and naming.names[-1] == "L1"
    assert naming.confidence == 1.0
    eleven = name_levels(_chain([False] + [True] * 11 + [False]))
    assert eleven.confidence < LOW_NAME_CONFIDENCE and "disagree" in eleven.warnings[0]


def test_ribs_everywhere_are_thoracic_but_uncertain() -> None:
    naming = name_levels(_chain([True] * 8))
    assert all(name.startswith("T") for name in naming.names)
    assert naming.confidence < LOW_NAME_CONFIDENCE


def test_below_the_ribs_seen_an_unknown_vertebra_is_not_named_lumbar() -> None:
    """The thorax CT's lowest vertebra, cut by the scan, has its rib zone out of view: with
    no rib-free vertebra anywhere, it is T12 (uncertain), not L1."""
    naming = name_levels(_chain([True] * 6 + [None]))
    assert naming.names[-1] == "T12"
    assert naming.confidence < LOW_NAME_CONFIDENCE


def test_no_cue_is_uncertain() -> None:
    naming = name_levels(_chain([None] * 5))
    assert naming.confidence < LOW_NAME_CONFIDENCE
    assert "uncertain" in naming.warnings[0]


# ---- the rib cue on real CTs -------------------------------------------------------------
def _found(path: Path) -> tuple[list[Segment], list[float]]:
    ct = load_path(path)
    grid = working_grid(ct)
    column = find_column(grid)
    ks, discs = find_discs(column, ct)
    spans = segments(column, discs, ks)
    labels = vertebra_labels(column, spans)
    z = [float(grid.to_lps([0.0, 0.0, (a + b) / 2.0])[2]) for a, b, _ in spans]
    assert rib_roots(column).left.shape == (column.bone.shape[0],)
    return _cues(column, labels, spans), z


@pytest.mark.skipif(not (DATA / "ct-abdomen-3mm" / "ct.nii.gz").exists(),
                    reason="shared test data absent")
def test_abdomen_ribs_on_t12_only_and_names_sure() -> None:
    found, _ = _found(DATA / "ct-abdomen-3mm" / "ct.nii.gz")
    assert found[0].rib is True  # T12's 12th ribs
    assert all(seg.rib is False for seg in found[1:-1])  # L1–L5, iliac crests beside L4–L5
    assert found[-1].sacrum
    naming = name_levels(found)
    assert naming.names == ["T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    assert naming.confidence == 1.0


@pytest.mark.skipif(not (DATA / "ct-chest-2mm-dicom").is_dir(), reason="shared test data absent")
def test_chest_ribs_everywhere_names_thoracic_and_uncertain() -> None:
    found, _ = _found(DATA / "ct-chest-2mm-dicom")
    assert sum(seg.rib is True for seg in found) >= len(found) - 1
    naming = name_levels(found)
    assert all(name.startswith(("C", "T")) for name in naming.names)
    assert naming.confidence < LOW_NAME_CONFIDENCE


@pytest.mark.skipif(not (DATA / "ct-thorax-1p5mm" / "ct.nii.gz").exists(),
                    reason="shared test data absent")
def test_thorax_cropped_behind_claims_no_rib_free_vertebra() -> None:
    found, _ = _found(DATA / "ct-thorax-1p5mm" / "ct.nii.gz")
    assert not any(seg.rib is False for seg in found)
    naming = name_levels(found)
    assert naming.names[-1] == "T12"  # README: the bottom slice cuts T12
    assert naming.confidence < LOW_NAME_CONFIDENCE


def test_a_thoracic_name_on_a_rib_free_vertebra_makes_the_names_uncertain() -> None:
    """Counted up from the sacrum past a split vertebra, the top one is named T12 although no
    rib leaves it (the abdomen CT on a grid rotated 10° about left–right did this)."""
    naming = name_levels(_chain([False] * 6, sacrum=True))
    assert naming.names[0] == "T12"
    assert naming.confidence < LOW_NAME_CONFIDENCE
    assert "The vertebra named T12 bears no rib" in naming.warnings[-1]


def test_a_vertebra_much_shorter_than_both_neighbours_makes_the_names_uncertain() -> None:
    found = _chain([None] * 5, sacrum=True)
    short = found[2]
    found[2] = Segment(short.first_k, short.first_k + 4, 40.0, rib=None, sacrum=False,
                       cut=False)
    found = [Segment(0, 9, 40.0, rib=True, sacrum=False, cut=False),
             Segment(10, 19, 40.0, rib=False, sacrum=False, cut=False), *found[1:]]
    naming = name_levels(found)
    assert "split in two" in naming.warnings[-1]
    assert naming.confidence < LOW_NAME_CONFIDENCE


def test_a_fragment_at_the_scans_edge_is_not_proof_of_no_rib() -> None:
    """Ribs on every whole vertebra and no rib seen on a fragment cut by the bottom edge:
    the fragment may bear its rib beyond the edge, so the last rib is not proven and nothing
    is named lumbar (the same chain with the fragment whole anchors T12 above it)."""
    found = _chain([True] * 6 + [False])
    whole = name_levels(found)
    assert whole.names[-2:] == ["T12", "L1"]
    found[-1] = dataclasses.replace(found[-1], cut=True)
    naming = name_levels(found)
    assert all(name.startswith(("C", "T")) for name in naming.names)
    assert naming.confidence < LOW_NAME_CONFIDENCE


@pytest.mark.skipif(not (DATA / "ct-abdomen-3mm" / "ct.nii.gz").exists(),
                    reason="shared test data absent")
@pytest.mark.parametrize("deg", [5.0, 15.0])
def test_a_sacrum_followed_only_a_few_millimetres_below_its_disc_is_still_s1(
        deg: float) -> None:
    """The abdomen turned about x: the column's canal is lost a few millimetres below the
    lumbosacral disc (the sacral canal merges with S1's fatty interior), so the stretch
    below the disc is a sliver of the column. S1 is kept from the bone below it, found
    as the sacrum from its own extent, and every name is right, as on the CT as stored
    (before: S1 dropped and the sacrum cue put on L5, or the sliver counted without a
    vertebra of its own, so that the names were shifted one level up)."""
    from bench.accuracy_storings import rotated
    from planning.anatomy.from_ct import anatomy_from_ct
    from planning.anatomy.from_labels import anatomy_from_label_map
    from planning.anatomy.label_tables import TOTALSEGMENTATOR
    from planning.io.nifti import load_nifti

    folder = DATA / "ct-abdomen-3mm"
    ct = rotated(load_nifti(folder / "ct.nii.gz"), 0, deg)
    truth = anatomy_from_label_map(ct, load_nifti(folder / "labels.nii.gz"), TOTALSEGMENTATOR)
    found = anatomy_from_ct(ct)
    assert "S1" in found.levels
    for name, g in found.levels.items():
        nearest = min(truth.levels.values(),
                      key=lambda t: float(((t.centroid_lps - g.centroid_lps) ** 2).sum()))
        assert nearest.name == name
