"""A synthetic thoracolumbar spine CT with exact ground truth (the "demo CT").

Public API::

    volume, truth = generate_demo_ct(progress=None)   # in memory
    truth = write_demo_ct(out_dir, progress=None)      # DICOM series + ground truth files
    truth = load_demo_truth(out_dir)                   # read the ground truth back
    folder = demo_ct_path(progress=None)               # the cached DICOM series (made once)

See `planning.demo.truth` for the label and part code tables and the JSON layout.
"""

from __future__ import annotations

from planning.demo.cache import demo_ct_path
from planning.demo.phantom import (
    DEMO_PATIENT,
    SERIES_DESCRIPTION,
    demo_uids,
    generate_demo_ct,
    load_demo_truth,
    write_demo_ct,
)
from planning.demo.truth import LABEL_CODES, DemoTruth, DemoTruthError, LevelTruth, PedicleTruth
from planning.demo.vertebra_model import PART_CODES

__all__ = [
    "DEMO_PATIENT",
    "LABEL_CODES",
    "PART_CODES",
    "SERIES_DESCRIPTION",
    "DemoTruth",
    "DemoTruthError",
    "LevelTruth",
    "PedicleTruth",
    "demo_ct_path",
    "demo_uids",
    "generate_demo_ct",
    "load_demo_truth",
    "write_demo_ct",
]
