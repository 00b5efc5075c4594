"""The words, colours, windows and number formats every surface of VertebroPlan shares.

Why one place: the screen, the PDF, the trainee report, the SR and the CLI must say the
same thing the same way — a needle "Caution" in amber with ⚠ on the screen is "Caution"
in the same amber with ⚠ on paper, a clearance of −1.4 mm has a true minus sign
everywhere, and the patient is named the same way in the series dialog as on the report.
Colours are hex strings here (the domain knows no Qt); widgets wrap them in ``QColor``,
the PDF writers turn them into RGB with `rgb`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from planning.check_result import Status

DISCLAIMER = "For research and training — not for clinical use"
"""Shown in the app and on every report, SR, segmentation and mesh."""

# ---- the checks' verdict ----------------------------------------------------------------
STATUS_COLORS: Mapping[Status | None, str] = {
    Status.SAFE: "#3ec46d",
    Status.CAUTION: "#f2b630",
    Status.UNSAFE: "#ef4b4b",
    None: "#a9b4c2",  # not checked yet (no anatomy)
}
STATUS_WORDS: Mapping[Status | None, str] = {
    Status.SAFE: "Safe",
    Status.CAUTION: "Caution",
    Status.UNSAFE: "Unsafe",
    None: "Not checked",
}
STATUS_SYMBOLS: Mapping[Status | None, str] = {
    Status.SAFE: "✔",
    Status.CAUTION: "⚠",
    Status.UNSAFE: "✖",
    None: "?",
}
"""A shape per status, so the verdict survives red–green colour blindness and greyscale."""
TEXT_ON_STATUS = "#111418"  # near-black reads on every status colour (contrast ≥ 5:1)

# ---- a plan's state in the case list (planning.case_list.STATES) -------------------------
PLAN_STATE_COLORS: Mapping[str, str] = {
    "draft": STATUS_COLORS[None],
    "checked": STATUS_COLORS[Status.SAFE],
    "exported": "#5aa9e6",
    "sent": "#b48ef0",
}

# ---- what else is drawn -----------------------------------------------------------------
CANAL_COLOR = "#4fc3f7"  # the spinal canal, in every view and on paper
HIGHLIGHT_COLOR = "#c792ea"  # the vertebra being edited
CEMENT_COLOR = "#f5e6a8"  # the cement spread preview (ivory, as PMMA looks)
VESSEL_COLOR = "#ff4f9a"  # a contrast-filled vessel near a needle (not the unsafe red)
REFERENCE_COLOR = "#ff8ad8"  # a training case's reference needles, shown after submission

WINDOW_PRESETS: Mapping[str, tuple[float, float]] = {
    "Bone": (1500.0, 300.0),
    "Soft tissue": (400.0, 40.0),
}
"""Display windows as (width HU, level HU); the order is the keyboard shortcut order (1, 2)."""
BONE_WINDOW_HU = WINDOW_PRESETS["Bone"]


def rgb(color: str) -> tuple[int, int, int]:
    """"#3ec46d" → (62, 196, 109), for writers that take RGB."""
    h = color.lstrip("#")
    return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))


# ---- numbers and names ------------------------------------------------------------------
MINUS = "\u2212"  # a real minus sign: a hyphen before a clearance is too easy to miss


def format_number(value: float, decimals: int = 1) -> str:
    """``value`` with a true minus sign, and no "−0.0" for a value that rounds to zero."""
    text = f"{value:.{decimals}f}"
    if float(text) == 0.0:
        text = f"{0.0:.{decimals}f}"
    return text.replace("-", MINUS)


def format_mm(value: float | None, decimals: int = 1) -> str:
    """Millimetres for display ("−1.4 mm"); "—" when the value does not exist."""
    return "—" if value is None else f"{format_number(value, decimals)} mm"


def format_deg(value: float) -> str:
    return f"{format_number(value)}°"


def format_lps(point: Iterable[float]) -> str:
    """"12.3, −45.6, 78.9": one decimal, true minus signs (LPS mm)."""
    return ", ".join(format_number(float(v)) for v in point)


def format_person_name(name: str) -> str:
    """DICOM PN "DOE^JOHN^PAUL" → "DOE, John Paul" (family name as stored, given names
    capitalised; only the alphabetic group of a multi-script name); a name without "^" is
    shown as it is."""
    parts = [p.strip() for p in str(name).split("=")[0].split("^")]
    family = parts[0] if parts else ""
    given = " ".join(p.title() if p.isupper() else p for p in parts[1:3] if p)
    if not given:
        return family
    return f"{family}, {given}" if family else given


def format_dicom_date(date: str) -> str:
    """DICOM DA "YYYYMMDD" → "YYYY-MM-DD" (anything else is shown as it is)."""
    d = str(date or "").strip()
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 and d.isdigit() else d
