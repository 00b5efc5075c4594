"""What the views draw of a plan: one `NeedleDisplay` per trajectory, and the status colours.

Views receive these values (built by the main window from the plan and its check results)
and never hold the plan itself, so every view draws the same state the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtGui import QColor

from planning.checks import Status
from planning.plan import Side
from planning.vocabulary import STATUS_COLORS
from planning.volume import FloatArray


def status_qcolor(status: Status | None) -> QColor:
    return QColor(STATUS_COLORS[status])


@dataclass(frozen=True, eq=False)
class NeedleDisplay:
    """One needle as drawn: its path (LPS mm), outer radius, check status and clearance."""

    level: str
    side: Side  # the patient's side
    entry_lps: FloatArray
    target_lps: FloatArray
    radius_mm: float
    status: Status | None = None
    clearance_mm: float | None = None  # canal clearance of the needle's surface
    selected: bool = False
    summary: str = ""  # the verdict and its reasons in words (tooltips)
    vessel_mm: float | None = None  # to the nearest contrast-filled vessel, when it matters

    @property
    def badge(self) -> str:
        """The number beside the needle's label: the canal clearance, or the distance to a
        contrast-filled vessel when that is the nearer danger ("vessel −2.1 mm")."""
        if self.vessel_mm is not None:
            return f"vessel {self.vessel_mm:.1f} mm".replace("-", "\u2212")
        if self.clearance_mm is not None:
            return f"{self.clearance_mm:.1f} mm".replace("-", "\u2212")
        return ""

    @property
    def key(self) -> tuple[str, Side]:
        return (self.level, self.side)

    @property
    def label(self) -> str:
        """"L1 L" / "L1 R": short enough to sit beside a needle in a view."""
        return f"{self.level} {self.side.letter}"

    @property
    def direction_lps(self) -> FloatArray:
        d = np.asarray(self.target_lps, float) - np.asarray(self.entry_lps, float)
        n = float(np.linalg.norm(d))
        return d / n if n > 0 else np.array([0.0, 1.0, 0.0])

    @property
    def color(self) -> QColor:
        return status_qcolor(self.status)
