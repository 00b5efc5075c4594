"""What the text of a 3D Slicer markup says about its trajectory: level, side, gauge, which
end a control point is, and the Frame of Reference; and the text VertebroPlan writes so
that it says so unambiguously.

Why apart from the file format: Slicer keeps only the control points' labels and
descriptions and the file name of a line the user saved, so the trajectory is recovered
from text — our own ``"VertebroPlan trajectory; level=L1; side=left; gauge=11G"``, or the
words a user typed ("L1 left", "L1 L", "L1_R", "left L2", "L1-L entry", "L1R tip").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from planning.plan import LEVEL_NAMES, Side, Trajectory

DESCRIPTION_PREFIX = "VertebroPlan trajectory"

_ENTRY_WORDS = frozenset({"entry", "start", "skin", "e"})
_TIP_WORDS = frozenset({"tip", "target", "end", "t"})
_SIDE_WORDS = {"left": Side.LEFT, "l": Side.LEFT, "lt": Side.LEFT,
               "right": Side.RIGHT, "r": Side.RIGHT, "rt": Side.RIGHT}
_LEVELS = frozenset(LEVEL_NAMES)
_COMPACT_RE = re.compile(r"^([ctls]\d{1,2})(left|right|lt|rt|l|r)$", re.IGNORECASE)
_GAUGE_RE = re.compile(r"^(\d{1,2})g$", re.IGNORECASE)


def describe(t: Trajectory, frame_of_reference_uid: str) -> str:
    """Our machine-readable text of ``t``, on the markup and on each control point."""
    text = f"{DESCRIPTION_PREFIX}; level={t.level}; side={t.side.value}; gauge={t.gauge}"
    if frame_of_reference_uid:
        text += f"; frame_of_reference_uid={frame_of_reference_uid}"
    return text


@dataclass(frozen=True)
class TrajectoryNames:
    """What one piece of text says: level, side, gauge, point role, frame (any may be None)."""

    level: str | None = None
    side: Side | None = None
    gauge: str | None = None
    role: str | None = None  # "entry" or "tip"
    frame_uid: str | None = None

    @property
    def key(self) -> tuple[str, Side] | None:
        return None if self.level is None or self.side is None else (self.level, self.side)


def parse_keyvalues(text: str) -> TrajectoryNames | None:
    """Our own description: ``...; level=L1; side=left; gauge=11G; point=entry``."""
    if DESCRIPTION_PREFIX.lower() not in text.lower():
        return None
    pairs = {}
    for part in text.split(";"):
        if "=" in part:
            k, _, v = part.partition("=")
            pairs[k.strip().lower()] = v.strip()
    level = pairs.get("level", "").upper()
    side = _SIDE_WORDS.get(pairs.get("side", "").lower())
    point = pairs.get("point", "").lower()
    return TrajectoryNames(
        level=level if level in _LEVELS else None,
        side=side,
        gauge=pairs.get("gauge") or None,
        role="entry" if point in _ENTRY_WORDS else "tip" if point in _TIP_WORDS else None,
        frame_uid=pairs.get("frame_of_reference_uid") or None,
    )


def parse_words(text: str) -> TrajectoryNames:
    """A free-form name: "L1 left", "L1 L", "L1_R", "left L2", "L1-L entry", "L1R tip".

    A level, side or role named twice with different values makes that item unknown, so
    "L1 L2 left" is not silently read as L1.
    """
    levels: set[str] = set()
    sides: set[Side] = set()
    gauges: set[str] = set()
    roles: set[str] = set()
    for word in re.split(r"[^0-9a-zA-Z]+", text):
        w = word.lower()
        if not w:
            continue
        compact = _COMPACT_RE.match(w)
        if w.upper() in _LEVELS:
            levels.add(w.upper())
        elif compact and compact.group(1).upper() in _LEVELS:
            levels.add(compact.group(1).upper())
            sides.add(_SIDE_WORDS[compact.group(2).lower()])
        elif w in _SIDE_WORDS:
            sides.add(_SIDE_WORDS[w])
        elif w in _ENTRY_WORDS - {"e"}:
            roles.add("entry")
        elif w in _TIP_WORDS - {"t"}:
            roles.add("tip")
        elif _GAUGE_RE.match(w):
            gauges.add(w.upper())
    return TrajectoryNames(
        level=levels.pop() if len(levels) == 1 else None,
        side=sides.pop() if len(sides) == 1 else None,
        gauge=gauges.pop() if len(gauges) == 1 else None,
        role=roles.pop() if len(roles) == 1 else None,
    )


def parse_text(text: str) -> TrajectoryNames:
    """Our key=value description if it is one, else free-form words."""
    return parse_keyvalues(text) or parse_words(text)
