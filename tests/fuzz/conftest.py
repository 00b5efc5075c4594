"""The fuzz tests import the `fuzz` package at the top of the repository (it is not
installed with the application), whichever way pytest was started; hypothesis keeps its
caches in the temporary folder, not in the working tree."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from hypothesis.configuration import set_hypothesis_home_dir

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "vertebroplan-hypothesis")
