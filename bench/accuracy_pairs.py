"""Bilateral pairs in the automatic plan, and what limits the levels without one.

Issue 21 asks for a bilateral pair on every vertebra whose body and both pedicles are in
view, and for what limits the others. Per level the planner writes one note per side
(`planning.autoplan.Proposal.notes`); the side without a needle says why, and this sorts
those sentences into a few causes that the harness counts over every storing.
"""

from __future__ import annotations

from collections import Counter

from planning.autoplan import Proposal
from planning.plan import Side

CAUSES = (  # (what the note says, the cause counted), the first that matches
    ("sacrum is not planned", "the sacrum (not planned automatically)"),
    ("thin-slice reconstruction", "voxels coarser than measured (not planned automatically)"),
    ("no cross-section of the pedicle", "pedicle not found"),
    ("too short to define an axis", "pedicle not found"),
    ("stays in the bone", "no corridor in the bone"),
    ("mm are needed", "canal margin (the wall's uncertainty)"),
    ("from the spinal canal", "within the canal's caution distance"),
    ("enters the spinal canal", "through the canal"),
    ("pedicle wall", "pedicle wall breached"),
    ("vessel", "vessel"),
    ("cortex", "cortex ahead of the tip"),
)
BEST = "the best one:"  # a refusal names the best path it tried and what stopped it


def unpaired_cause(proposal: Proposal, level: str) -> str | None:
    """None when ``level`` has a needle on each side; else the cause the side (or sides)
    without one gives, as counted in `CAUSES` ("other" when none matches)."""
    planned = {t.side for t in proposal.plan.trajectories if t.level == level}
    if planned == {Side.LEFT, Side.RIGHT}:
        return None
    sides = [s for s in (Side.LEFT, Side.RIGHT) if s not in planned]
    notes = [proposal.notes[(level, s)] for s in sides if (level, s) in proposal.notes]
    for note in notes or [proposal.omitted.get(level, "")]:  # a level left out as a whole
        # the sentence's opening is the same for every refusal; what stopped the best path
        # follows "the best one:" (that of the first gauge tried)
        note = note.split(BEST, 1)[1] if BEST in note else note
        for phrase, cause in CAUSES:
            if phrase in note:
                return cause
    return "other"


def count_pairs(proposal: Proposal, levels: list[str]) -> tuple[int, Counter[str]]:
    """(levels of ``levels`` with a bilateral pair, the causes of the others)."""
    causes: Counter[str] = Counter()
    paired = 0
    for level in levels:
        cause = unpaired_cause(proposal, level)
        if cause is None:
            paired += 1
        else:
            causes[cause] += 1
    return paired, causes
