"""What the levels panel says about each level: the `LevelRow` value it is given, and the
words, tags, tooltips and order it derives from one.

Kept apart from `levels_panel` (the table, its buttons and the user's clicks) so the panel
stays small and these texts, which a surgeon reads to decide, can be tested without a table.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from planning.anatomy.model import LOW_NAME_CONFIDENCE
from planning.assessment.levels import NOT_GRADED
from planning.checks import CheckResult, Status, canal_wall_words
from planning.plan import Side, level_index
from planning.vocabulary import STATUS_COLORS, STATUS_SYMBOLS, STATUS_WORDS, format_mm
from widgets.check_details import LABEL_GREY, grade_meaning, reason_text

LOW_CONFIDENCE = LOW_NAME_CONFIDENCE
"""Below this label confidence a level's name is marked as doubtful."""
NO_NEEDLE = "—"
NOT_CHECKED = "not checked"
WARNING_AMBER = "#f2b630"


@dataclass(frozen=True)
class LevelRow:
    """What the panel shows of one level."""

    name: str  # "L1"
    detected: bool  # found in the CT's anatomy (False: planned only)
    confidence: float | None  # label confidence 0..1 (None when not applicable)
    left: CheckResult | None  # check of the left needle (None: no left needle)
    right: CheckResult | None
    left_planned: bool = False  # a needle exists even if not checked yet (no anatomy)
    right_planned: bool = False
    fracture_grade: int | None = None  # Genant 0–3 (None: not assessed)
    fracture_text: str = ""  # e.g. "moderate wedge fracture, 34 % anterior height loss"

    @property
    def fractured(self) -> bool:
        return bool(self.fracture_grade)

    def result(self, side: Side) -> CheckResult | None:
        return self.left if side is Side.LEFT else self.right

    def has_needle(self, side: Side) -> bool:
        """A needle exists on that side, checked or not."""
        planned = self.left_planned if side is Side.LEFT else self.right_planned
        return planned or self.result(side) is not None

    @property
    def has_any_needle(self) -> bool:
        return self.has_needle(Side.LEFT) or self.has_needle(Side.RIGHT)

    @property
    def low_confidence(self) -> bool:
        return self.confidence is not None and self.confidence < LOW_CONFIDENCE


def needle_cell_text(row: LevelRow, side: Side) -> str:
    """The cell of one needle: "✔ 3.2 mm A", "not checked", or "—" when there is none."""
    result = row.result(side)
    if result is not None:
        symbol = STATUS_SYMBOLS[result.status]
        return f"{symbol} {format_mm(result.canal_clearance_mm)} {result.breach_grade}"
    return NOT_CHECKED if row.has_needle(side) else NO_NEEDLE


def needle_tooltip(row: LevelRow, side: Side) -> str:
    """Rich-text tooltip of a needle cell: verdict, canal numbers and every reason."""
    result = row.result(side)
    title = f"{row.name} {side.value}"
    if result is None:
        if row.has_needle(side):
            return (
                f"<b>{title} — not checked</b><br>{row.name} is not in this CT's anatomy, "
                "so the needle cannot be checked against the canal."
            )
        return f"<b>{title}</b> — no needle. Use “Place {side.value}” to add one."
    word = STATUS_WORDS[result.status]
    lines = [
        f"<b>{html.escape(title)} — {word}</b>",
        f"Canal clearance {format_mm(result.canal_clearance_mm)}, grade "
        f"{result.breach_grade} ({html.escape(grade_meaning(result.breach_grade))})",
    ]
    if (wall := canal_wall_words(result)) is not None:
        lines.append(f"Canal wall {html.escape(wall)}")
    text = "<br>".join(lines)
    if result.reasons:
        items = "".join(f"<li>{html.escape(reason_text(result, r))}</li>" for r in result.reasons)
        text += f"<ul style='margin-left:-20px'>{items}</ul>"
    else:
        text += "<br>Every check is within its limits."
    return text


FRACTURE_COLORS = {1: WARNING_AMBER, 2: "#f08a3c", 3: STATUS_COLORS[Status.UNSAFE]}


def row_order(row: LevelRow) -> tuple[int, int, int]:
    """Fractured levels first, the most severe first (they are what is treated), then the
    others cranial to caudal."""
    grade = row.fracture_grade or 0
    return (0 if grade else 1, -grade, level_index(row.name))


def level_tag(row: LevelRow) -> tuple[str, str]:
    """(tag, colour) shown beside a level's name: a fracture's Genant grade first (what the
    surgeon plans for), else a doubtful label's confidence, else "no Fx" once assessed, or
    "Fx n/a" where the body's measurement failed and it is not graded (a confident label's
    percentage says nothing to a surgeon; it, and why a level is not graded, are in the
    tooltip)."""
    if not row.detected:
        return "not in CT", LABEL_GREY
    if row.fractured and row.fracture_grade is not None:
        low = "?" if row.low_confidence else ""
        return f"{low}Fx G{row.fracture_grade}", FRACTURE_COLORS[min(row.fracture_grade, 3)]
    if row.low_confidence and row.confidence is not None:
        return f"? {row.confidence * 100:.0f}%", WARNING_AMBER
    if row.fracture_grade is not None:  # assessed: not fractured
        return "no Fx", LABEL_GREY
    if row.fracture_text.startswith(NOT_GRADED):  # measured, but the measurement failed
        return "Fx n/a", LABEL_GREY  # not graded: the reason is in the row's tooltip
    return "", LABEL_GREY


def level_tooltip(row: LevelRow) -> str:
    if not row.detected:
        return (
            f"{row.name}: planned only — not found in this CT's anatomy, so its needles "
            "cannot be checked or proposed."
        )
    text = f"{row.name}: found in the CT"
    if row.confidence is not None:
        text += f", label confidence {row.confidence * 100:.0f}%"
        if row.low_confidence:
            text += " (low: count the vertebrae on the sagittal view and shift if needed)"
    text += "."
    if row.fracture_text:
        text += f"\n{row.fracture_text}"
    return text


def verdict_summary(rows: Sequence[LevelRow]) -> tuple[str, str | None]:
    """(rich text, tooltip) of the line under the table that counts the needles' verdicts,
    most severe first; the tooltip is None when there is no needle to count."""
    counts: dict[Status | None, int] = {}
    for row in rows:
        for side in Side:
            if row.has_needle(side):
                result = row.result(side)
                status = result.status if result is not None else None
                counts[status] = counts.get(status, 0) + 1
    total = sum(counts.values())
    if not rows:
        return f"<span style='color:{LABEL_GREY}'>No levels yet</span>", None
    if not total:
        return f"<span style='color:{LABEL_GREY}'>{len(rows)} levels · no needles</span>", None
    parts = []
    for status in (Status.UNSAFE, Status.CAUTION, Status.SAFE, None):
        n = counts.get(status, 0)
        if n:
            word = STATUS_WORDS[status].lower().replace(" ", "&nbsp;")
            color = STATUS_COLORS[status]
            parts.append(f"<span style='color:{color}'><b>{n}</b> {word}</span>")
    noun = "needle" if total == 1 else "needles"
    return " · ".join(parts), f"{total} {noun} in the plan"
