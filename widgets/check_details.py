"""The details of one needle's check, written for a surgeon: every number with its unit and
the reasons behind the verdict.

The panel only formats a `CheckResult` it is given; it never runs a check. The small
formatters here (signed millimetres, grade meanings, reasons without their label prefix,
status symbols) are shared with the levels panel so both say the same thing the same way.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

from planning.carm import CArmSetting
from planning.checks import CheckResult, Status, canal_wall_words, grade_meaning, reason_text
from planning.plan import GAUGES
from planning.vocabulary import (
    STATUS_COLORS,
    STATUS_SYMBOLS,
    STATUS_WORDS,
    TEXT_ON_STATUS,
    format_deg,
    format_mm,
)

LABEL_GREY = "#8e99a6"
VALUE_WHITE = "#e8ecf1"
PLACEHOLDER = "Select a needle to see its checks"


def needle_title(result: CheckResult) -> str:
    """"L1 left", the way a surgeon names a needle."""
    return f"{result.level} {result.side.value}"


class CheckDetailsPanel(QWidget):
    """Everything the checks measured for one needle, and why it got its verdict.

    A coloured headline gives the verdict at a glance; the numbers below are selectable
    rich text, so they can be copied into a note or a report.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._result: CheckResult | None = None
        self._headline = QLabel()
        self._headline.setObjectName("checkHeadline")
        self._headline.setTextFormat(Qt.TextFormat.RichText)
        self._headline.setWordWrap(True)
        self._headline.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self._body = QLabel()
        self._body.setObjectName("checkBody")
        self._body.setTextFormat(Qt.TextFormat.RichText)
        self._body.setWordWrap(True)
        self._body.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self._body.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self._body.setContentsMargins(6, 4, 6, 6)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self._body)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self._headline)
        layout.addWidget(scroll, 1)
        self.show_result(None)

    # ---- public API -------------------------------------------------------------------
    def show_result(self, result: CheckResult | None, gauge_name: str | None = None,
                    carm: dict[str, CArmSetting] | None = None, position: str = "prone",
                    level: Any | None = None, convention: str = "table") -> None:
        """Show one needle's check (``None``: nothing selected), then its level's clinical
        assessment when there is one (``level``: a `LevelAssessment`).

        ``gauge_name`` (a `planning.plan.GAUGES` key) is shown with its outer diameter,
        because every clearance is measured from the needle's outer surface. ``carm``: the
        needle's working views, shown in both C-arm conventions (``convention`` first) and
        in words.
        """
        self._result = result
        if result is None and level is not None:
            self.show_level(level)
            return
        if result is None:
            self._headline.setStyleSheet(
                f"QLabel {{ color: {LABEL_GREY}; padding: 10px 8px; font-style: italic; }}"
            )
            self._headline.setText(html.escape(PLACEHOLDER))
            self._body.setText("")
            return
        color = STATUS_COLORS[result.status]
        self._headline.setStyleSheet(
            f"QLabel {{ background-color: {color}; color: {TEXT_ON_STATUS};"
            " border-radius: 4px; padding: 6px 10px; }"
        )
        self._headline.setText(_headline_html(result, gauge_name))
        self._body.setText(_body_html(result) + _carm_html(carm, position, convention)
                           + ("" if level is None else level_html(level)))

    def show_level(self, level: Any) -> None:
        """A level without a selected needle: its fracture, pedicles, cement and flags."""
        self._result = None
        grade = level.genant_grade
        color = FRACTURE_HEADLINE_COLORS.get(grade or 0, LABEL_GREY)
        self._headline.setStyleSheet(
            f"QLabel {{ background-color: {color}; color: {TEXT_ON_STATUS};"
            " border-radius: 4px; padding: 6px 10px; }")
        self._headline.setText(
            f"<div style='font-size:13pt; font-weight:bold'>{html.escape(level.level)}</div>"
            f"<div style='font-size:9pt'>{html.escape(level.fracture_summary())}</div>")
        self._body.setText(level_html(level))

    def result(self) -> CheckResult | None:
        """The result on show (the panel keeps nothing else)."""
        return self._result

    def plain_text(self) -> str:
        """The headline and the details as plain text: what a copy of the panel gives."""
        parts = []
        for label in (self._headline, self._body):
            doc = QTextDocument()
            doc.setHtml(label.text())
            parts.append(doc.toPlainText().strip())
        return "\n".join(p for p in parts if p)


# ---- HTML ----------------------------------------------------------------------------
FRACTURE_HEADLINE_COLORS = {0: "#9aa5b1", 1: "#f2b630", 2: "#f08a3c", 3: "#e5484d"}


def level_html(a: Any) -> str:
    """A `planning.assessment.levels.LevelAssessment` as rows: fracture, heights, cement,
    pedicles against their norms, leakage risks (each with its reason)."""
    amber = FRACTURE_HEADLINE_COLORS[2]
    rows = [_section(f"Level {a.level}")]
    f = a.fracture
    rows.append(_row("Fracture", html.escape(a.fracture_summary()),
                     value_color=amber if a.fractured else VALUE_WHITE))
    if f is not None:
        h = f.heights
        rows.append(_row("Heights A / M / P",
                         f"{h.anterior_mm:.1f} / {h.middle_mm:.1f} / {h.posterior_mm:.1f} mm"))
        r = f.retropulsion
        rows.append(_row("Posterior wall", html.escape(
            f"retropulsed {r.displacement_mm:.1f} mm" if r.present else
            f"in line ({r.displacement_mm:+.1f} mm)"),
            value_color=amber if r.present else VALUE_WHITE))
    if a.body_volume_ml is not None:
        rows.append(_row("Body volume", f"{a.body_volume_ml:.1f} ml"))
        lo, hi = a.fill_range
        total, side = a.cement_ml_total, a.cement_ml_per_side
        rows.append(_row(f"Cement {100 * lo:.0f}–{100 * hi:.0f} %",
                         f"{total[0]:.1f}–{total[1]:.1f} ml",
                         f"{side[0]:.1f}–{side[1]:.1f} ml a needle"))
    if a.cement is not None:
        for spread in a.cement.spreads:
            who = spread.side.value.capitalize() if spread.side is not None else "Tip"
            rows.append(_row(f"{who} cement reach",
                             f"{spread.distance_to_posterior_wall_mm:.1f} mm to the posterior "
                             f"wall, {spread.distance_to_basivertebral_foramen_mm:.1f} mm "
                             "to the basivertebral foramen",
                             f"at {100 * a.cement.preview_fill:.0f} % fill"))
    for side_name in ("left", "right"):
        p = next((p for s, p in a.pedicles.items() if s.value == side_name), None)
        if p is None:
            continue
        norm = next((c for q, c in p.norms.items() if q.value == "width_mm"), None)
        note = "" if norm is None else f"norm {norm.mean:.1f} ± {norm.sd:.1f} mm ({norm.category})"
        fit_color = VALUE_WHITE if p.fit == "ok" else (
            amber if p.fit == "tight" else STATUS_COLORS[Status.UNSAFE])
        value = (f"{p.width_mm:.1f} × {p.height_mm:.1f} mm, {p.gauge.name} fit "
                 f"{p.fit_ratio:.2f} ({p.fit})")
        if p.fit != "ok":
            value += f" — {p.suggestion}"
        rows.append(_row(f"{side_name.capitalize()} pedicle", html.escape(value), note,
                         value_color=fit_color))
    flags = a.present_flags
    rows.append(_section("Leakage risk"))
    if not flags:
        rows.append(_row("Flags", f"none found ({len(a.flags)} checks)"))
    for flag in flags:
        rows.append(_row(flag.kind.replace("_", " ").capitalize(),
                         html.escape(flag.why), f"{flag.confidence} confidence",
                         value_color=amber))
    return "<table width='100%' cellspacing='0' cellpadding='2'>" + "".join(rows) + "</table>"

def _headline_html(result: CheckResult, gauge_name: str | None) -> str:
    symbol = STATUS_SYMBOLS[result.status]
    word = STATUS_WORDS[result.status].upper()
    title = html.escape(f"{symbol} {needle_title(result)} — {word}")
    sub = [f"canal {format_mm(result.canal_clearance_mm)}, grade {result.breach_grade}"]
    if gauge_name:
        g = GAUGES.get(gauge_name)
        sub.append(f"{gauge_name} needle" + (f" ({g.outer_diameter_mm:.2f} mm)" if g else ""))
    return (
        f"<div style='font-size:13pt; font-weight:bold'>{title}</div>"
        f"<div style='font-size:9pt'>{html.escape(' · '.join(sub))}</div>"
    )


def _row(label: str, value: str, note: str = "", value_color: str = VALUE_WHITE) -> str:
    """One line of the table: the name, the value (HTML) and an optional grey note."""
    note_html = (
        f" <span style='color:{LABEL_GREY}; font-size:8.5pt'>{_keep_units(html.escape(note))}"
        "</span>"
        if note
        else ""
    )
    value = _keep_units(value)
    return (
        f"<tr><td width='34%' style='color:{LABEL_GREY}' valign='top'>{html.escape(label)}</td>"
        f"<td style='color:{value_color}'>{value}{note_html}</td></tr>"
    )


def _keep_units(text_html: str) -> str:
    """Non-breaking spaces before units and after "<", so a narrow dock never wraps a number
    away from its unit ("< 2 | mm")."""
    return text_html.replace(" mm", "&nbsp;mm").replace("&lt; ", "&lt;&nbsp;").replace(
        "&gt; ", "&gt;&nbsp;"
    )


def _section(title: str) -> str:
    return (
        f"<tr><td colspan='3' style='color:{LABEL_GREY}; font-weight:bold; padding-top:6px'>"
        f"{html.escape(title.upper())}</td></tr>"
    )


def _body_html(r: CheckResult) -> str:
    bad = STATUS_COLORS[Status.UNSAFE]
    warn = STATUS_COLORS[Status.CAUTION]
    breached = r.breach_grade != "A"
    rows = [_section("Spinal canal")]
    rows.append(
        _row(
            "Clearance",
            f"<b>{format_mm(r.canal_clearance_mm)}</b>",
            "from the needle's surface",
            bad if breached else VALUE_WHITE,
        )
    )
    rows.append(
        _row(
            "Breach grade",
            f"<b>{html.escape(r.breach_grade)}</b>",
            f"— {grade_meaning(r.breach_grade)}",
            bad if breached else VALUE_WHITE,
        )
    )
    wall = canal_wall_words(r)
    if wall is not None:
        value, _, note = wall.partition(" (")
        rows.append(_row("Canal wall", value, note.replace(")", "", 1),
                         VALUE_WHITE if r.canal_margin_kept else warn))

    rows.append(_section("Pedicle"))
    if r.wall_breaches:
        for b in r.wall_breaches:
            medial = b.wall == "medial"
            rows.append(
                _row(
                    f"{b.wall.capitalize()} wall",
                    f"breached by {format_mm(b.depth_mm)}",
                    "towards the canal" if medial else "",
                    bad if medial else warn,
                )
            )
    else:
        rows.append(_row("Walls", "no breach"))
    if r.crossings:
        rows.append(_row("Crosses into", html.escape(", ".join(r.crossings)), value_color=bad))

    rows.append(_section("Tip"))
    if r.tip_in_body:
        in_body = f"yes ({html.escape(r.tip_level or r.level)})"
    else:
        where = f"in {r.tip_level}" if r.tip_level else "outside the vertebra"
        in_body = f"no — {html.escape(where)}"
    rows.append(_row("In the body", in_body, value_color=VALUE_WHITE if r.tip_in_body else warn))
    depth = "—" if r.tip_depth_fraction is None else f"{r.tip_depth_fraction * 100:.0f}%"
    rows.append(_row("Depth", depth, "of body depth"))
    rows.append(_row("Anterior cortex", format_mm(r.tip_to_anterior_cortex_mm), "ahead of the tip"))
    rows.append(_row("To midline", format_mm(r.tip_to_midline_mm)))
    if r.tip_walled_directions is not None:
        all_round = r.tip_walled_directions == r.tip_rays
        rows.append(_row("Bone around (CT)",
                         "all round" if all_round
                         else f"{r.tip_walled_directions} of {r.tip_rays} sides",
                         f"{r.tip_hu:.0f} HU at the tip" if r.tip_hu is not None else "",
                         VALUE_WHITE if all_round else bad))

    rows.append(_section("Image"))
    if r.vessel_clearance_mm is None:
        rows.append(_row("Vessels", "no contrast-filled vessel near the spine"))
    else:
        v = r.vessel_clearance_mm
        rows.append(_row("Nearest vessel", format_mm(v), "contrast-filled, from the CT",
                         bad if v < 3.0 else warn if v < 5.0 else VALUE_WHITE))
    rows.append(_row("Approach", html.escape(r.approach),
                     value_color=VALUE_WHITE if r.approach == "transpedicular" else warn))

    rows.append(_section("Needle"))
    pair = "— (no other needle)" if r.pair_distance_mm is None else format_mm(r.pair_distance_mm)
    rows.append(_row("Other needle", pair, "surface to surface" if r.pair_distance_mm else ""))
    rows.append(_row("Length", format_mm(r.length_mm), "entry to tip"))
    skin = "— (skin not found)" if r.skin_to_tip_mm is None else format_mm(r.skin_to_tip_mm)
    rows.append(_row("Skin to tip", skin))

    table = (
        "<table width='100%' cellspacing='0' cellpadding='2'>" + "".join(rows) + "</table>"
    )
    angles = (
        "<table width='100%' cellspacing='0' cellpadding='2'>"
        + _section("Angles")
        + f"<tr><td></td><td style='color:{LABEL_GREY}' align='right'>patient</td>"
        f"<td style='color:{LABEL_GREY}' align='right'>vertebra</td></tr>"
        + _angle_row("Medial", r.medial_angle_deg, r.medial_angle_vertebra_deg)
        + _angle_row("Craniocaudal", r.craniocaudal_angle_deg, r.craniocaudal_angle_vertebra_deg)
        + f"<tr><td colspan='3' style='color:{LABEL_GREY}; font-size:8.5pt'>"
        "medial +: converging to the midline<br>craniocaudal +: pointing caudally</td></tr>"
        "</table>"
    )
    return _reasons_html(r) + table + angles


def _carm_html(carm: dict[str, CArmSetting] | None, position: str, convention: str) -> str:
    """The needle's C-arm working views: both conventions, each named (the one the C-arm is
    set to first), and the detector's position in words, which needs no convention."""
    if not carm:
        return ""
    registered = "head-first supine" if convention == "table" else "as the patient lies"
    rows = [_section(f"C-arm working views (patient {position})"),
            f"<tr><td colspan='2' style='color:{LABEL_GREY}; font-size:8.5pt'>"
            f"C-arm registers the patient: {registered} (Edit ▸ Settings)</td></tr>"]
    for key, label in (("bulls_eye", "Bull's-eye"), ("progression", "Progression")):
        if key in carm:
            lead, *others = carm[key].angle_lines(convention)  # type: ignore[arg-type]
            more = "<br>".join(html.escape(x) for x in (*others, carm[key].words))
            rows.append(_row(label, f"<b>{html.escape(lead)}</b><br><span style='color:"
                                    f"{LABEL_GREY}; font-size:8.5pt'>{more}</span>"))
    return "<table width='100%' cellspacing='0' cellpadding='2'>" + "".join(rows) + "</table>"


def _angle_row(label: str, patient_deg: float, vertebra_deg: float) -> str:
    return (
        f"<tr><td style='color:{LABEL_GREY}'>{html.escape(label)}</td>"
        f"<td align='right' style='color:{VALUE_WHITE}'>{format_deg(patient_deg)}</td>"
        f"<td align='right' style='color:{VALUE_WHITE}'>{format_deg(vertebra_deg)}</td></tr>"
    )


def _reasons_html(r: CheckResult) -> str:
    heading = (
        f"<p style='color:{STATUS_COLORS[r.status]}; font-weight:bold; margin-top:2px;"
        f" margin-bottom:0'>WHY {html.escape(STATUS_WORDS[r.status].upper())}</p>"
    )
    if not r.reasons:
        return heading + f"<p style='color:{VALUE_WHITE}'>Every check is within its limits.</p>"
    items = "".join(f"<li>{html.escape(reason_text(r, text))}</li>" for text in r.reasons)
    return heading + f"<ul style='margin-left:-20px; color:{VALUE_WHITE}'>{items}</ul>"
