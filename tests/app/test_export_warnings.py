"""The report leads with uncertain level names, and carries the CT's and the anatomy's
warnings (they were not in exported reports before)."""

from __future__ import annotations

import dataclasses

from app.export_job import report_warnings
from planning.anatomy import anatomy_from_demo_truth
from planning.anatomy.model import UNCERTAIN_NAMES_TEXT


def test_uncertain_names_lead_the_warnings(shared_demo_ct) -> None:
    volume, truth = shared_demo_ct
    anatomy = anatomy_from_demo_truth(truth)
    sure = report_warnings(volume, anatomy)
    assert UNCERTAIN_NAMES_TEXT not in sure
    assert all(w in sure for w in anatomy.warnings)
    levels = dict(anatomy.levels)
    levels["L1"] = dataclasses.replace(levels["L1"], confidence=0.5)  # ribs ≠ sacrum
    doubtful = dataclasses.replace(anatomy, levels=levels, warnings=["a warning"])
    notes = report_warnings(volume, doubtful)
    assert notes[0] == UNCERTAIN_NAMES_TEXT and "a warning" in notes
    assert report_warnings(volume, None) == list(volume.warnings)
