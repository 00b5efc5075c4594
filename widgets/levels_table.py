"""The levels table: its columns, the item-data roles the panel fills, and how its cells
are painted (a level's name with its tag, a needle's verdict as a status pill).

Kept apart from `levels_panel` (rows, buttons, the user's clicks) so each stays small.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHeaderView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
)

from planning.vocabulary import TEXT_ON_STATUS
from widgets.check_details import LABEL_GREY, VALUE_WHITE
from widgets.level_rows import NOT_CHECKED

LEVEL_COL, LEFT_COL, RIGHT_COL = 0, 1, 2
ROW_HEIGHT_PX = 30
LEVEL_COLUMN_PX = 84
MIN_POINT_SIZE = 7.0  # the smallest a clearance is ever drawn

LEVEL_ROLE = Qt.ItemDataRole.UserRole  # level name, on every cell of a row
TAG_ROLE = Qt.ItemDataRole.UserRole + 1  # small tag beside the level name ("82 %")
TAG_COLOR_ROLE = Qt.ItemDataRole.UserRole + 2
CURRENT_ROLE = Qt.ItemDataRole.UserRole + 3  # the needle the user picked: outlined


class LevelsDelegate(QStyledItemDelegate):
    """Paints a level cell (name + confidence tag) and a needle cell (a status pill).

    The status colour is drawn as an inset pill rather than the cell background so that it
    stays visible on a selected row: selection shows as the blue around the pill.
    """

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        text = opt.text
        opt.text = ""
        opt.backgroundBrush = QBrush()
        opt.state = opt.state & ~QStyle.StateFlag.State_HasFocus
        style = opt.widget.style() if opt.widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if index.column() == LEVEL_COL:
            self._paint_level(painter, opt, index, text, selected)
        else:
            self._paint_needle(painter, opt, index, text)
        painter.restore()

    @staticmethod
    def _paint_level(
        painter: QPainter, opt: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex, text: str, selected: bool,
    ) -> None:
        rect = opt.rect.adjusted(8, 0, -6, 0)
        font = QFont(opt.font)
        font.setBold(True)
        italic = opt.font.italic()  # planned-only levels (FontRole, applied by initStyleOption)
        painter.setFont(font)
        painter.setPen(QColor("#ffffff" if selected else (LABEL_GREY if italic else VALUE_WHITE)))
        painter.drawText(rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
        tag = index.data(TAG_ROLE) or ""
        if tag:
            small = QFont(opt.font)
            small.setPointSizeF(max(6.0, opt.font.pointSizeF() * 0.82))
            small.setBold(tag.startswith("?"))
            painter.setFont(small)
            color = QColor(index.data(TAG_COLOR_ROLE) or LABEL_GREY)
            if selected and not tag.startswith("?"):
                color = QColor("#dfe8f5")
            painter.setPen(color)
            # never over the name: what does not fit beside it is elided (the tooltip has it)
            room = rect.width() - QFontMetrics(font).horizontalAdvance(text) - 6
            tag = QFontMetrics(small).elidedText(tag, Qt.TextElideMode.ElideRight, max(room, 0))
            painter.drawText(rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, tag)

    @staticmethod
    def _paint_needle(
        painter: QPainter, opt: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex, text: str,
    ) -> None:
        brush = index.data(Qt.ItemDataRole.BackgroundRole)
        font = QFont(opt.font)
        if not isinstance(brush, QBrush) or brush.style() == Qt.BrushStyle.NoBrush:
            painter.setFont(font)
            painter.setPen(QColor(LABEL_GREY))
            painter.drawText(opt.rect, Qt.AlignmentFlag.AlignCenter, text)
            return
        pill = opt.rect.adjusted(4, 3, -4, -3)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(brush)
        painter.drawRoundedRect(pill, 4, 4)
        if index.data(CURRENT_ROLE):
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(QColor("#ffffff"), 2))
            painter.drawRoundedRect(pill.adjusted(1, 1, -1, -1), 3, 3)
        font.setBold(text != NOT_CHECKED)
        painter.setFont(fitting_font(font, text, pill.width() - 6))
        painter.setPen(QColor(TEXT_ON_STATUS))
        painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, text)


def fitting_font(font: QFont, text: str, width_px: int) -> QFont:
    """``font``, made regular and then smaller until ``text`` fits: a clearance must never be
    clipped ("−10.4 mm E" in a narrow dock, or with a scroll bar showing)."""
    fitted = QFont(font)
    if QFontMetrics(fitted).horizontalAdvance(text) <= width_px:
        return fitted
    fitted.setBold(False)
    size = fitted.pointSizeF() if fitted.pointSizeF() > 0 else 10.0
    while QFontMetrics(fitted).horizontalAdvance(text) > width_px and size > MIN_POINT_SIZE:
        size -= 0.5
        fitted.setPointSizeF(size)
    return fitted


def levels_table() -> QTableWidget:
    """The table of levels: Level, Left and Right columns, whole rows selected (several with
    Ctrl/Shift), never edited in place, cells painted by `LevelsDelegate`."""
    table = QTableWidget(0, 3)
    table.setObjectName("levelsTable")
    table.setHorizontalHeaderLabels(["Level", "Left", "Right"])
    tips = (
        "Vertebral level and its label confidence",
        "The patient's left needle: canal clearance (mm) and breach grade (A = none)",
        "The patient's right needle: canal clearance (mm) and breach grade (A = none)",
    )
    for col, tip in enumerate(tips):
        header_item = table.horizontalHeaderItem(col)
        if header_item is not None:
            header_item.setToolTip(tip)
    table.verticalHeader().hide()
    table.verticalHeader().setDefaultSectionSize(ROW_HEIGHT_PX)
    table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    header = table.horizontalHeader()
    header.setSectionResizeMode(LEVEL_COL, QHeaderView.ResizeMode.Fixed)
    header.resizeSection(LEVEL_COL, LEVEL_COLUMN_PX)
    header.setSectionResizeMode(LEFT_COL, QHeaderView.ResizeMode.Stretch)
    header.setSectionResizeMode(RIGHT_COL, QHeaderView.ResizeMode.Stretch)
    header.setHighlightSections(False)
    header.setSectionsClickable(False)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setShowGrid(False)
    table.setWordWrap(False)
    table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    table.setItemDelegate(LevelsDelegate(table))
    table.setMinimumHeight(ROW_HEIGHT_PX * 4 + 30)
    return table
