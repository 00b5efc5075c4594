"""Where a CT's anatomy comes from: found in the CT, the demo CT's ground truth, or an
imported segmentation — chosen in this one place.

Why one place: the command line, the window and the training cases each chose it on
their own, with their own ways to find the demo's truth and to read a label map; a plan
checked in one of them could stand on another anatomy than the same plan in the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from planning.anatomy.model import Anatomy
from planning.errors import VertebroPlanError
from planning.progress import Progress
from planning.volume import Volume

AUTOMATIC = "auto"  # found in the CT (`planning.anatomy.from_ct`)
DEMO_TRUTH = "truth"  # the demo CT's ground truth
LABELS = "labels"  # a NIfTI label map with its label table, or a DICOM SEG


class NotTheDemoCT(VertebroPlanError, ValueError):
    """The demo's ground truth was asked for a CT that is not the demo CT."""


@dataclass(frozen=True)
class AnatomySource:
    """Which anatomy to use for a CT, and what it needs."""

    kind: str = AUTOMATIC
    labels_path: Path | None = None  # LABELS: the segmentation file
    label_table: str = "totalsegmentator"  # LABELS: what a NIfTI map's codes mean
    shift_labels: int = 0  # the user's correction of the level names (+1: one lower)
    demo_folder: Path | None = None  # DEMO_TRUTH: a written demo CT with its truth file


def is_demo_ct(volume: Volume) -> bool:
    """The CT is the built-in demo CT (by its Frame of Reference)."""
    from planning.demo import demo_uids

    return volume.frame_of_reference_uid == demo_uids()["frame_of_reference_uid"]


def load_anatomy(volume: Volume, source: AnatomySource,
                 progress: Progress | None = None) -> Anatomy:
    """The anatomy of ``volume`` from ``source``, the label shift applied.

    Raises `NotTheDemoCT` for the demo's truth on another CT, and the readers'
    `VertebroPlanError`s naming the file and the problem for a segmentation.
    """
    from planning.anatomy.from_ct import anatomy_from_ct, shift_anatomy_labels

    if source.kind == AUTOMATIC:
        return anatomy_from_ct(volume, progress, shift_labels=source.shift_labels)
    if source.kind == LABELS:
        from planning.interop.segmentation import anatomy_from_segmentation

        if source.labels_path is None:
            raise ValueError("a LABELS anatomy source needs its labels_path")
        anatomy = anatomy_from_segmentation(volume, source.labels_path, source.label_table,
                                            progress)
    elif source.kind == DEMO_TRUTH:
        from planning.anatomy import anatomy_from_demo_truth
        from planning.demo import demo_ct_path, load_demo_truth

        if not is_demo_ct(volume):
            raise NotTheDemoCT("the CT is not the demo CT: it has no ground truth")
        folder = source.demo_folder
        if folder is None or not (folder / "ground_truth.json").exists():
            folder = demo_ct_path(progress)
        anatomy = anatomy_from_demo_truth(load_demo_truth(folder))
    else:
        raise ValueError(f"unknown anatomy source {source.kind!r}")
    return shift_anatomy_labels(anatomy, source.shift_labels) if source.shift_labels else anatomy
