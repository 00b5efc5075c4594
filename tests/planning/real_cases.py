"""Test helper: the real CTs of ../shared/data (beside the project) with the reference
anatomy they come with; the tests that use them skip where the data is absent."""

from __future__ import annotations

from pathlib import Path

from planning.anatomy import Anatomy, anatomy_from_label_map
from planning.anatomy.label_tables import load_label_table
from planning.io import load_path
from planning.volume import Volume

ABDOMEN = Path(__file__).resolve().parents[3] / "shared" / "data" / "ct-abdomen-3mm"


def abdomen_with_reference() -> tuple[Volume, Anatomy]:
    """The 3 mm abdominal CT and its reference anatomy, made from its TotalSegmentator
    labels and its body map (``bodies.nii.gz``), as every real-CT target is measured."""
    ct = load_path(ABDOMEN / "ct.nii.gz")
    reference = anatomy_from_label_map(ct, load_path(ABDOMEN / "labels.nii.gz"),
                                       load_label_table("totalsegmentator"),
                                       bodies=load_path(ABDOMEN / "bodies.nii.gz"))
    return ct, reference
