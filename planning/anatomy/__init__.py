"""What the checks need to know about the spine: canal, vertebrae, bodies, local frames.

Public API::

    table = load_label_table("totalsegmentator")          # or "verse", "demo", a JSON file
    anatomy = anatomy_from_label_map(ct, labels, table, progress=None, bodies=None)
    anatomy = anatomy_from_demo_truth(truth)

Every source builds the same `Anatomy` (masks on a crop of the CT grid, per-level
`VertebraGeometry` in LPS mm), so the checks do not care where it came from.
"""

from __future__ import annotations

from planning.anatomy.canal_from_vertebrae import (
    CanalEstimate,
    CanalNotFoundError,
    derive_canal,
)
from planning.anatomy.from_demo import anatomy_from_demo_truth
from planning.anatomy.from_labels import LabelMapError, anatomy_from_label_map
from planning.anatomy.label_tables import (
    DEMO,
    PRESETS,
    TOTALSEGMENTATOR,
    VERSE,
    LabelTable,
    LabelTableError,
    load_label_table,
)
from planning.anatomy.model import Anatomy, VertebraGeometry

__all__ = [
    "DEMO",
    "PRESETS",
    "TOTALSEGMENTATOR",
    "VERSE",
    "Anatomy",
    "CanalEstimate",
    "CanalNotFoundError",
    "LabelMapError",
    "LabelTable",
    "LabelTableError",
    "VertebraGeometry",
    "anatomy_from_demo_truth",
    "anatomy_from_label_map",
    "derive_canal",
    "load_label_table",
]
