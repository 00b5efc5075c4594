"""An external segmentation as the anatomy: a NIfTI label map or a DICOM SEG.

Why one entry point: the user picks a file ("Import segmentation…", ``--labels FILE``)
and should not have to say what it is; a DICOM SEG carries its own segment table (its
codes and labels say which segment is which vertebra), a NIfTI label map needs one
(TotalSegmentator, VerSe or a JSON table).
"""

from __future__ import annotations

from pathlib import Path

from planning.anatomy.from_labels import anatomy_from_label_map
from planning.anatomy.label_tables import load_label_table
from planning.anatomy.model import Anatomy
from planning.interop.any_plan import is_dicom_file
from planning.progress import Progress
from planning.volume import Volume


def anatomy_from_segmentation(ct: Volume, path: str | Path, table: str = "totalsegmentator",
                              progress: Progress | None = None) -> Anatomy:
    """The anatomy of ``ct`` from the segmentation file at ``path``.

    ``table`` (a preset name or a JSON file) says what a NIfTI label map's codes mean; a
    DICOM SEG's own segment descriptions are used instead. Raises `VertebroPlanError`s
    naming the file and the problem (not a label map, another CT, no vertebrae).
    """
    from planning.io.nifti import load_nifti

    p = Path(path)
    if is_dicom_file(p):
        from planning.interop.labels_from_seg import read_seg_labels

        labels, seg_table = read_seg_labels(p, ct)
        anatomy = anatomy_from_label_map(ct, labels, seg_table, progress)
    else:
        anatomy = anatomy_from_label_map(ct, load_nifti(p), load_label_table(table), progress)
    return anatomy
