"""The needles a painted view draws over its image: the plan's (in their status colours) and
a reference set drawn dashed (a training case's, after submission).

Why a mixin: the slice views and the fluoroscopy panes hold the same two lists, set the same
way from the scene presenter; each draws them its own way (a slice cuts them, a DRR projects
them), but what they are given, and that a change repaints, is one thing.
"""

from __future__ import annotations

from widgets.plan_display import NeedleDisplay


class NeedleLayers:
    """``set_needles`` / ``set_reference`` for a QWidget subclass (it provides ``update``)."""

    _needles: list[NeedleDisplay]
    _reference: list[NeedleDisplay]

    def _init_needle_layers(self) -> None:
        self._needles = []
        self._reference = []

    def set_needles(self, needles: list[NeedleDisplay]) -> None:
        """The needles to draw (their status colours and selection included)."""
        self._needles = list(needles)
        self.update()  # type: ignore[attr-defined]  # QWidget's, later in the MRO

    def set_reference(self, needles: list[NeedleDisplay]) -> None:
        """Reference needles drawn dashed in their own colour (a training case's)."""
        self._reference = list(needles)
        self.update()  # type: ignore[attr-defined]

    @property
    def needles(self) -> list[NeedleDisplay]:
        return list(self._needles)
