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
    volume, truth = shared_demo_ct
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
