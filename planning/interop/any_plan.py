"""Open a plan from either of its file forms: ``.vplan.json`` or a VertebroPlan DICOM SR."""

from __future__ import annotations

from pathlib import Path

from planning.interop.plan_file import PlanFormatError, load_plan
from planning.plan import Plan


def is_dicom_file(path: Path) -> bool:
    """A DICOM Part 10 file: "DICM" after the 128-byte preamble."""
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def is_plan_file(path: str | Path) -> bool:
    """Whether ``path`` names a plan file (``.vplan.json``), which saving writes back to, and
    not a form a plan is imported from (a DICOM SR, 3D Slicer markups)."""
    name = Path(path).name.lower()
    return name.endswith(".json") and not name.endswith(".mrk.json")


def load_any_plan(path: str | Path) -> Plan:
    """The plan in ``path``; errors name the file and what is wrong with it."""
    p = Path(path)
    if not p.exists():
        raise PlanFormatError(f"'{p}' does not exist.")
    if is_dicom_file(p):
        from planning.interop.plan_from_sr import read_plan_sr

        return read_plan_sr(p)
    if p.name.lower().endswith(".mrk.json"):  # 3D Slicer markups: lines or point pairs
        from planning.interop.slicer_markups import read_markups

        return read_markups(p)
    return load_plan(p)
