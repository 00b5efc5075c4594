"""The levels panel and the check details say the right thing, in the right colour, and turn
clicks into the right intents."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("QT_API", "pyside6")

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QFontMetrics, QImage
from PySide6.QtWidgets import QWidget

from planning.checks import CheckResult, Status, WallBreach, breach_grade
from planning.plan import Side
from planning.vocabulary import STATUS_COLORS
from widgets.check_details import PLACEHOLDER, CheckDetailsPanel
from widgets.level_rows import LevelRow, level_tag, level_tooltip
from widgets.levels_panel import UNCERTAIN_TEXT, LevelsPanel
from widgets.levels_table import LEFT_COL, LEVEL_COL, RIGHT_COL, fitting_font

pytestmark = pytest.mark.gui

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
STYLE_QSS = Path(__file__).resolve().parents[2] / "resources" / "style.qss"
DOCK_WIDTH_PX = 320


def _result(
    level: str, side: Side, status: Status, clearance_mm: float, *reasons: str, **changes: object
) -> CheckResult:
    """A check result as `planning.checks.check` would build it, with its reasons prefixed
    by the needle's label ("Left L1: …")."""
    label = f"{side.value.capitalize()} {level}"
    base = CheckResult(
        level=level,
        side=side,
        status=status,
        canal_clearance_mm=clearance_mm,
        breach_grade=breach_grade(clearance_mm),
        closest_canal_point_lps=(0.0, 0.0, 0.0),
        wall_breaches=(),
        tip_in_body=True,
        tip_level=level,
        tip_to_anterior_cortex_mm=6.2,
        tip_depth_fraction=0.71,
        tip_to_midline_mm=4.8,
        crossings=(),
        pair_distance_mm=11.5,
        length_mm=84.3,
        skin_to_tip_mm=96.0,
        medial_angle_deg=19.5,
        craniocaudal_angle_deg=6.0,
        medial_angle_vertebra_deg=16.2,
        craniocaudal_angle_vertebra_deg=2.4,
        reasons=tuple(f"{label}: {r}" for r in reasons),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


UNSAFE_L1_LEFT = _result(
    "L1", Side.LEFT, Status.UNSAFE, -1.4,
    "the needle enters the spinal canal by 1.4 mm (grade B)",
    "the needle breaches the medial pedicle wall by 1.9 mm (towards the canal)",
    wall_breaches=(WallBreach("medial", 1.9),),
)
CAUTION_T12_RIGHT = _result(
    "T12", Side.RIGHT, Status.CAUTION, 1.3,
    "only 1.3 mm from the spinal canal (keep at least 2.0 mm)",
)
SAFE_T12_LEFT = _result("T12", Side.LEFT, Status.SAFE, 4.1)


def realistic_rows() -> list[LevelRow]:
    """T12–L5 as after a proposal on a thoracolumbar CT: every state the panel can show."""
    return [
        LevelRow("T12", True, 0.42, SAFE_T12_LEFT, CAUTION_T12_RIGHT),
        LevelRow("L1", True, 0.91, UNSAFE_L1_LEFT, _result("L1", Side.RIGHT, Status.SAFE, 3.6)),
        LevelRow(
            "L2", True, 0.93,
            _result("L2", Side.LEFT, Status.SAFE, 5.2),
            _result("L2", Side.RIGHT, Status.SAFE, 4.8),
        ),
        LevelRow("L3", True, 0.95, None, None),
        LevelRow(
            "L4", True, 0.90,
            _result(
                "L4", Side.LEFT, Status.CAUTION, 2.6,
                "the tip is in the posterior half of the body (41% deep; aim for the anterior "
                "third)",
                tip_depth_fraction=0.41,
            ),
            None,
        ),
        LevelRow("L5", False, None, None, None, left_planned=True, right_planned=True),
    ]


@pytest.fixture
def panel(qtbot) -> LevelsPanel:
    widget = LevelsPanel()
    qtbot.addWidget(widget)
    widget.resize(DOCK_WIDTH_PX, 520)
    widget.set_rows(realistic_rows())
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _row_of(panel: LevelsPanel, name: str) -> int:
    return next(i for i in range(panel.table.rowCount())
                if panel.table.item(i, LEVEL_COL).text() == name)


def _cell_centre(panel: LevelsPanel, name: str, col: int) -> QPoint:
    return panel.table.visualItemRect(panel.table.item(_row_of(panel, name), col)).center()


def _click(qtbot, panel: LevelsPanel, name: str, col: int,
           modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, modifier,
                     _cell_centre(panel, name, col))


def _render(widget: QWidget) -> QImage:
    """What the widget paints, in 32-bit colour whatever the display's depth."""
    image = QImage(widget.size(), QImage.Format.Format_RGB32)
    image.fill(QColor("black"))
    widget.render(image)
    return image


def _save(widget: QWidget, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    assert widget.grab().save(str(path))
    return path


# ---- levels panel ----------------------------------------------------------------------
def test_cells_show_clearance_grade_and_the_status_colour(panel: LevelsPanel) -> None:
    table = panel.table
    expected = {
        ("L1", LEFT_COL): ("✖ −1.4 mm B", Status.UNSAFE),
        ("T12", RIGHT_COL): ("⚠ 1.3 mm A", Status.CAUTION),
        ("L2", LEFT_COL): ("✔ 5.2 mm A", Status.SAFE),
        ("L5", LEFT_COL): ("not checked", None),
    }
    for (name, col), (text, status) in expected.items():
        item = table.item(_row_of(panel, name), col)
        assert item.text() == text
        assert item.background().color() == QColor(STATUS_COLORS[status])
    empty = table.item(_row_of(panel, "L3"), LEFT_COL)
    assert empty.text() == "—"
    assert empty.background().style() == Qt.BrushStyle.NoBrush


def test_status_colour_is_painted_in_the_cell(panel: LevelsPanel) -> None:
    """A pixel probe: the colour must reach the screen, not only the item's data."""
    image = _render(panel.table.viewport())
    for name, col, status in (("L1", LEFT_COL, Status.UNSAFE), ("T12", RIGHT_COL, Status.CAUTION),
                              ("L2", RIGHT_COL, Status.SAFE)):
        rect = panel.table.visualItemRect(panel.table.item(_row_of(panel, name), col))
        probe = QColor(image.pixel(rect.left() + 8, rect.center().y()))
        assert probe == QColor(STATUS_COLORS[status]), (name, col, probe.name())
    rect = panel.table.visualItemRect(panel.table.item(_row_of(panel, "L3"), LEFT_COL))
    empty = QColor(image.pixel(rect.left() + 8, rect.center().y())).name()
    assert empty not in set(STATUS_COLORS.values())


def test_a_deep_breach_is_shrunk_to_fit_not_clipped(qtbot) -> None:
    narrow = LevelsPanel()
    qtbot.addWidget(narrow)
    narrow.resize(260, 300)
    deep = _result("L1", Side.LEFT, Status.UNSAFE, -10.4)
    narrow.set_rows([LevelRow("L1", True, 0.9, deep, None)])
    narrow.show()
    qtbot.waitExposed(narrow)
    item = narrow.table.item(0, LEFT_COL)
    assert item.text() == "✖ −10.4 mm E"
    pill_px = narrow.table.visualItemRect(item).width() - 8
    font = fitting_font(narrow.table.font(), item.text(), pill_px - 6)
    assert QFontMetrics(font).horizontalAdvance(item.text()) <= pill_px - 6


def test_low_confidence_and_planned_only_levels_are_marked(panel: LevelsPanel) -> None:
    t12 = panel.table.item(_row_of(panel, "T12"), LEVEL_COL)
    l5 = panel.table.item(_row_of(panel, "L5"), LEVEL_COL)
    l2 = panel.table.item(_row_of(panel, "L2"), LEVEL_COL)
    assert "42%" in t12.toolTip() and "low" in t12.toolTip()
    assert t12.data(Qt.ItemDataRole.UserRole + 1) == "? 42%"
    assert l2.data(Qt.ItemDataRole.UserRole + 1) == ""  # a confident label needs no tag
    assert "93%" in l2.toolTip()
    assert "planned only" in l5.toolTip()


def test_tooltip_gives_the_reasons_in_words(panel: LevelsPanel) -> None:
    tip = panel.table.item(_row_of(panel, "L1"), LEFT_COL).toolTip()
    assert "The needle enters the spinal canal by 1.4 mm (grade B)" in tip
    assert "medial pedicle wall" in tip
    assert "Left L1:" not in tip  # the heading already says which needle


def test_clicking_a_needle_cell_emits_its_level_and_side(qtbot, panel: LevelsPanel) -> None:
    with qtbot.waitSignal(panel.needle_selected) as blocker:
        _click(qtbot, panel, "L1", RIGHT_COL)
    assert blocker.args == ["L1", Side.RIGHT]
    with qtbot.waitSignal(panel.needle_selected) as blocker:
        _click(qtbot, panel, "T12", LEFT_COL)
    assert blocker.args == ["T12", Side.LEFT]
    assert panel.selected_levels() == ["T12"]


def test_clicking_a_level_or_an_empty_cell_emits_level_selected(qtbot, panel: LevelsPanel) -> None:
    with qtbot.waitSignal(panel.level_selected) as blocker:
        _click(qtbot, panel, "L2", LEVEL_COL)
    assert blocker.args == ["L2"]
    with qtbot.assertNotEmitted(panel.needle_selected), \
            qtbot.waitSignal(panel.level_selected) as blocker:
        _click(qtbot, panel, "L3", RIGHT_COL)  # no needle there
    assert blocker.args == ["L3"]


def test_propose_sends_selected_levels_cranial_to_caudal_with_the_gauge(
    qtbot, panel: LevelsPanel
) -> None:
    _click(qtbot, panel, "L2", LEVEL_COL)
    with qtbot.assertNotEmitted(panel.level_selected):  # extending a selection is no navigation
        _click(qtbot, panel, "T12", LEVEL_COL, Qt.KeyboardModifier.ControlModifier)
    assert panel.selected_levels() == ["T12", "L2"]
    with qtbot.waitSignal(panel.gauge_changed) as changed:
        panel.gauge_combo.setCurrentIndex(panel.gauge_combo.findData("13G"))
    assert changed.args == ["13G"]
    assert panel.propose_button.text() == "Propose selected"
    with qtbot.waitSignal(panel.propose_requested) as blocker:
        qtbot.mouseClick(panel.propose_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [["T12", "L2"], "13G"]


def test_propose_without_selection_sends_every_detected_level(qtbot, panel: LevelsPanel) -> None:
    panel.table.clearSelection()
    assert panel.propose_button.text() == "Propose all"
    with qtbot.waitSignal(panel.propose_requested) as blocker:
        qtbot.mouseClick(panel.propose_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [["T12", "L1", "L2", "L3", "L4"], "11G"]  # L5 is not in the CT


def test_busy_disables_propose_and_says_why(qtbot, panel: LevelsPanel) -> None:
    panel.set_busy(True, "Proposing T12–L4…")
    assert not panel.propose_button.isEnabled()
    assert panel.busy_label.isVisible() and panel.busy_label.text() == "Proposing T12–L4…"
    panel.set_busy(False)
    assert panel.propose_button.isEnabled()
    assert not panel.busy_label.isVisible()


def test_shift_buttons_emit_minus_and_plus_one(qtbot, panel: LevelsPanel) -> None:
    with qtbot.waitSignal(panel.shift_labels_requested) as up:
        qtbot.mouseClick(panel.shift_up_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(panel.shift_labels_requested) as down:
        qtbot.mouseClick(panel.shift_down_button, Qt.MouseButton.LeftButton)
    assert (up.args, down.args) == ([-1], [1])


def test_remove_acts_on_the_picked_needle_or_on_whole_levels(qtbot, panel: LevelsPanel) -> None:
    _click(qtbot, panel, "L1", LEFT_COL)
    with qtbot.waitSignal(panel.remove_requested) as blocker:
        qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["L1", Side.LEFT]
    _click(qtbot, panel, "L2", LEVEL_COL)
    with qtbot.waitSignal(panel.remove_requested) as blocker:
        qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["L2", None]
    _click(qtbot, panel, "L3", LEVEL_COL)
    assert not panel.remove_button.isEnabled()  # L3 has no needle


def test_place_needs_exactly_one_level(qtbot, panel: LevelsPanel) -> None:
    panel.table.clearSelection()
    assert not panel.place_left_button.isEnabled()
    _click(qtbot, panel, "L3", LEVEL_COL)
    with qtbot.waitSignal(panel.place_requested) as blocker:
        qtbot.mouseClick(panel.place_right_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["L3", Side.RIGHT]


def test_set_rows_keeps_the_selection_of_levels_that_still_exist(
    qtbot, panel: LevelsPanel
) -> None:
    _click(qtbot, panel, "T12", LEVEL_COL)
    _click(qtbot, panel, "L2", LEVEL_COL, Qt.KeyboardModifier.ControlModifier)
    _click(qtbot, panel, "L3", LEVEL_COL, Qt.KeyboardModifier.ControlModifier)
    rows = [r for r in realistic_rows() if r.name != "L3"]
    rows[1] = replace(rows[1], left=None)  # L1 left removed meanwhile
    panel.set_rows(list(reversed(rows)))  # any order in, cranial to caudal on screen
    assert panel.selected_levels() == ["T12", "L2"]
    assert [panel.table.item(i, LEVEL_COL).text() for i in range(5)] == [
        "T12", "L1", "L2", "L4", "L5"
    ]
    assert panel.table.item(1, LEFT_COL).text() == "—"


def test_set_rows_keeps_the_picked_needle(qtbot, panel: LevelsPanel) -> None:
    _click(qtbot, panel, "L1", RIGHT_COL)
    panel.set_rows(realistic_rows())
    with qtbot.waitSignal(panel.remove_requested) as blocker:
        qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["L1", Side.RIGHT]


def test_set_gauge_and_select_level_do_not_echo(qtbot, panel: LevelsPanel) -> None:
    with qtbot.assertNotEmitted(panel.gauge_changed), \
            qtbot.assertNotEmitted(panel.level_selected):
        panel.set_gauge("10")
        panel.select_level("l4")
    assert panel.gauge() == "10G"
    assert panel.selected_levels() == ["L4"]


def test_add_level_offers_only_absent_levels(qtbot, panel: LevelsPanel) -> None:
    actions = panel.add_level_menu.actions()
    offered = {a.data() for a in actions if a.data()}
    for sub in (a.menu() for a in actions if a.menu()):
        offered |= {a.data() for a in sub.actions() if a.data()}
    assert {"T11", "S1", "C1"} <= offered
    assert not offered & {"T12", "L1", "L5"}
    first = actions[0]
    assert first.data() == "T11" and "above T12" in first.text()
    with qtbot.waitSignal(panel.add_level_requested) as blocker:
        first.trigger()
    assert blocker.args == ["T11"]


def test_uncertain_labels_show_a_warning(panel: LevelsPanel) -> None:
    assert not panel.warning_label.isVisible()
    panel.set_labels_uncertain(True)
    assert panel.warning_label.isVisible()
    assert UNCERTAIN_TEXT in panel.warning_label.text()


def test_summary_counts_the_verdicts(panel: LevelsPanel) -> None:
    text = panel.summary_label.text()
    assert "9 needles" in panel.summary_label.toolTip()
    assert "<b>1</b> unsafe" in text and "<b>2</b> caution" in text
    assert "<b>4</b> safe" in text and "<b>2</b> not&nbsp;checked" in text


# ---- check details ---------------------------------------------------------------------
def test_details_show_verdict_numbers_and_reasons(qtbot) -> None:
    details = CheckDetailsPanel()
    qtbot.addWidget(details)
    details.resize(DOCK_WIDTH_PX, 600)
    details.show()
    details.show_result(UNSAFE_L1_LEFT, "11G")
    text = details.plain_text()
    assert "L1 left — UNSAFE" in text
    assert "−1.4 mm" in text
    assert "into the canal by < 2 mm" in text
    assert "The needle enters the spinal canal by 1.4 mm (grade B)" in text
    assert "Medial wall" in text and "1.9 mm" in text
    assert "71%" in text and "84.3 mm" in text and "19.5°" in text and "16.2°" in text
    assert "11G needle (3.05 mm)" in text
    headline = details.findChild(QWidget, "checkHeadline")
    image = _render(headline)
    assert QColor(image.pixel(3, image.height() // 2)) == QColor(STATUS_COLORS[Status.UNSAFE])


def test_details_without_a_needle_invite_a_selection(qtbot) -> None:
    details = CheckDetailsPanel()
    qtbot.addWidget(details)
    details.show_result(SAFE_T12_LEFT)
    assert "Every check is within its limits." in details.plain_text()
    details.show_result(None)
    assert details.plain_text() == PLACEHOLDER


# ---- screenshots for a human -----------------------------------------------------------
def test_screenshots_in_the_dark_theme(qtbot, panel: LevelsPanel) -> None:
    qss = STYLE_QSS.read_text(encoding="utf-8")
    panel.setStyleSheet(qss)
    panel.set_labels_uncertain(True)
    _click(qtbot, panel, "L1", LEFT_COL)
    _click(qtbot, panel, "L2", LEVEL_COL, Qt.KeyboardModifier.ControlModifier)
    panel.select_needle("L1", Side.LEFT)
    panel.resize(DOCK_WIDTH_PX, 470)
    qtbot.wait(50)
    assert _save(panel, "levels_panel.png").stat().st_size > 0
    image = _render(panel.table.viewport())
    rect = panel.table.visualItemRect(panel.table.item(_row_of(panel, "L1"), RIGHT_COL))
    assert QColor(image.pixel(rect.left() + 8, rect.center().y())) == QColor(
        STATUS_COLORS[Status.SAFE]
    )  # the stylesheet's selection colour does not hide the verdict

    details = CheckDetailsPanel()
    qtbot.addWidget(details)
    details.setStyleSheet(qss)
    details.resize(DOCK_WIDTH_PX, 640)
    details.show_result(UNSAFE_L1_LEFT, "11G")
    details.show()
    qtbot.waitExposed(details)
    assert _save(details, "check_details.png").stat().st_size > 0


def test_fractured_levels_come_first_with_their_grade(qtbot) -> None:
    """The levels to treat lead the table, the most severe first, tagged with the grade."""
    panel = LevelsPanel()
    qtbot.addWidget(panel)
    panel.set_rows([
        LevelRow("T12", True, 0.95, None, None, fracture_grade=0),
        LevelRow("L1", True, 0.95, None, None, fracture_grade=2,
                 fracture_text="Moderate wedge fracture: 34 % anterior height loss"),
        LevelRow("L2", True, 0.95, None, None, fracture_grade=0),
        LevelRow("L4", True, 0.40, None, None, fracture_grade=3),
        LevelRow("L3", True, 0.95, None, None),
    ])
    assert [r.name for r in panel.rows()] == ["L4", "L1", "T12", "L2", "L3"]
    l1 = panel.table.item(_row_of(panel, "L1"), LEVEL_COL)
    assert l1.data(Qt.ItemDataRole.UserRole + 1) == "Fx G2"
    assert "34 % anterior height loss" in l1.toolTip()
    l4 = panel.table.item(_row_of(panel, "L4"), LEVEL_COL)
    assert l4.data(Qt.ItemDataRole.UserRole + 1) == "?Fx G3"  # and its name is uncertain
    assert panel.table.item(_row_of(panel, "L2"), LEVEL_COL).data(
        Qt.ItemDataRole.UserRole + 1) == "no Fx"


def test_level_tag_names_the_fracture_grade_or_says_none() -> None:
    row = LevelRow("L1", True, 0.95, None, None, fracture_grade=2)
    assert level_tag(row)[0] == "Fx G2"
    assert level_tag(replace(row, fracture_grade=0))[0] == "no Fx"
    assert level_tag(replace(row, fracture_grade=None))[0] == ""
    failed = replace(row, fracture_grade=None, fracture_text="Not graded: the body measures "
                     "22 mm front to back against 36 mm for its neighbours")
    assert level_tag(failed)[0] == "Fx n/a"  # not graded: the reason is in the tooltip
    assert "36 mm for its neighbours" in level_tooltip(failed)
    assert level_tag(replace(row, fracture_grade=None,
                             fracture_text="Not graded (sacrum)"))[0] == ""
    assert level_tag(replace(row, fracture_grade=0, confidence=0.4))[0] == "? 40%"
