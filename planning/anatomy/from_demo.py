"""`Anatomy` from the demo CT's ground truth: exact masks and the designed frames.

Nothing is estimated here: the canal, discs and bodies are the phantom's own labels, and each
level's body centroid and axes are those the phantom was built with. This is the reference
the derived anatomy (from label maps, later from the CT alone) is measured against.

Only the planned levels (T10 … L5) are levels; the partial T9 above and the sacrum below
are left out of ``labels`` like any vertebra that is not offered for planning.
"""

from __future__ import annotations

import numpy as np

from planning.anatomy.model import Anatomy, VertebraGeometry, crop_affine, crop_box
from planning.demo.truth import LABEL_CODES, DemoTruth
from planning.demo.vertebra_model import PART_BODY

CROP_MARGIN_MM = 20.0
SOURCE = "demo CT ground truth"


def anatomy_from_demo_truth(truth: DemoTruth) -> Anatomy:
    """The demo's anatomy on a crop of its CT grid around the planned levels (+20 mm)."""
    codes = [lv.label_code for lv in truth.levels]
    vertebra = np.isin(truth.labels, codes)
    spacing_kji = np.linalg.norm(truth.affine_lps[:3, :3], axis=0)[::-1]
    m = [int(np.ceil(CROP_MARGIN_MM / s)) for s in spacing_kji]
    box = crop_box([vertebra], (m[0], m[1], m[2]), truth.labels.shape)
    labels = truth.labels[box]
    kept = np.where(vertebra[box], labels, 0).astype(np.int16)
    levels = {lv.name: VertebraGeometry(lv.name, lv.label_code, lv.centroid_lps.copy(),
                                        lv.superior_lps.copy(), lv.anterior_lps.copy(),
                                        lv.left_lps.copy())
              for lv in truth.levels}
    return Anatomy(
        affine_lps=crop_affine(truth.affine_lps, box),
        labels=kept,
        canal=labels == LABEL_CODES["canal"],
        bodies=vertebra[box] & (truth.parts[box] == PART_BODY),
        levels=levels,
        discs=labels == LABEL_CODES["disc"],
        source=SOURCE,
    )
