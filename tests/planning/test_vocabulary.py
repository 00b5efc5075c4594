"""One vocabulary for every surface: the screen, the PDF, the SR, the CLI say the same."""

from __future__ import annotations

import re

from planning.checks import Status
from planning.vocabulary import (
    BONE_WINDOW_HU,
    DISCLAIMER,
    STATUS_COLORS,
    STATUS_SYMBOLS,
    STATUS_WORDS,
    WINDOW_PRESETS,
    format_dicom_date,
    format_lps,
    format_mm,
    format_number,
    format_person_name,
    rgb,
)


def test_every_status_and_not_checked_has_a_word_a_colour_and_a_distinct_symbol() -> None:
    keys = [*Status, None]
    for table in (STATUS_COLORS, STATUS_WORDS, STATUS_SYMBOLS):
        assert set(table) == set(keys)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", STATUS_COLORS[k]) for k in keys)
    assert len({STATUS_SYMBOLS[k] for k in keys}) == len(keys)  # shape, not colour alone
    assert len({STATUS_COLORS[k] for k in keys}) == len(keys)


def test_numbers_carry_a_true_minus_and_no_negative_zero() -> None:
    assert format_number(-1.44) == "\u22121.4"
    assert format_number(-0.04) == "0.0"
    assert format_mm(None) == "—" and format_mm(2.0) == "2.0 mm"
    assert format_lps((1.0, -2.25, 0.0)) == "1.0, \u22122.2, 0.0"


def test_names_dates_colours_and_windows() -> None:
    assert format_person_name("DOE^JOHN^PAUL") == "DOE, John Paul"
    assert format_person_name("Yamada^Tarou=山田^太郎") == "Yamada, Tarou"
    assert format_dicom_date("20240102") == "2024-01-02" and format_dicom_date("2024") == "2024"
    assert rgb("#3ec46d") == (62, 196, 109)
    assert BONE_WINDOW_HU == WINDOW_PRESETS["Bone"] == (1500.0, 300.0)
    assert next(iter(WINDOW_PRESETS)) == "Bone"  # key 1
    assert DISCLAIMER == "For research and training — not for clinical use"
