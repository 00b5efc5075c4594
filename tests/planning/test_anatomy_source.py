"""The one place that chooses a CT's anatomy: the demo's truth only on the demo CT, the
user's label shift applied whatever the source."""

from __future__ import annotations

import dataclasses

import pytest

from planning.anatomy.from_demo import SOURCE as DEMO_SOURCE
from planning.anatomy_source import (
    DEMO_TRUTH,
    AnatomySource,
    NotTheDemoCT,
    is_demo_ct,
    load_anatomy,
)


def test_the_demo_truth_on_the_demo_ct_and_its_shifted_names(shared_demo_ct) -> None:
    volume, _ = shared_demo_ct
    assert is_demo_ct(volume)
    anatomy = load_anatomy(volume, AnatomySource(DEMO_TRUTH))
    assert anatomy.source == DEMO_SOURCE
    names = list(anatomy.levels)
    assert "L1" in names and len(names) >= 5
    shifted = load_anatomy(volume, AnatomySource(DEMO_TRUTH, shift_labels=1))
    # one lower: what was called L1 is L2 now, at the same place
    assert shifted.levels["L2"].centroid_lps == pytest.approx(anatomy.levels["L1"].centroid_lps)


def test_the_demo_truth_is_refused_for_another_ct(shared_demo_ct) -> None:
    volume, _ = shared_demo_ct
    other = dataclasses.replace(volume, frame_of_reference_uid="2.25.999")
    assert not is_demo_ct(other)
    with pytest.raises(NotTheDemoCT, match="not the demo CT"):
        load_anatomy(other, AnatomySource(DEMO_TRUTH))


def test_which_vertebra_is_here_is_the_nearest_body_within_half_a_vertebra() -> None:
    import numpy as np

    from planning.anatomy.model import LEVEL_NEAR_MM, level_at

    centres = {"L1": np.array([0.0, 0.0, 100.0]), "L2": np.array([0.0, 0.0, 70.0])}
    up = np.array([0.0, 0.0, 1.0])
    assert level_at(centres, np.array([5.0, 5.0, 96.0]), up) == "L1"
    assert level_at(centres, np.array([0.0, 0.0, 80.0]), up) == "L2"
    assert level_at(centres, np.array([0.0, 0.0, 70.0 - LEVEL_NEAR_MM - 0.5]), up) is None
    assert level_at({}, np.zeros(3), up) is None
    tilted = np.array([0.0, np.sin(0.3), np.cos(0.3)])  # an oblique slice still finds it
    assert level_at(centres, np.array([0.0, 0.0, 99.0]), tilted) == "L1"
