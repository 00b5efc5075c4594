"""Label tables: which code of an imported label map is which vertebra (or the canal, a disc).

A label map is only numbers; the table says what they mean. Presets cover the two common
sources — TotalSegmentator v2 ("total" task) and the VerSe challenge numbering, which the
demo CT's ground truth also uses — and a user can bring their own as a small JSON file,
either ``{"L1": 31, "L2": 30, ...}`` or ``{"31": "L1", "30": "L2", ...}``. Besides level
names (C1–C7, T1–T12, L1–L5, S1) a JSON table may name ``"canal"`` (the label is the spinal
canal itself), ``"canal_hint"`` / ``"spinal_cord"`` (a structure inside the canal) and
``"disc"`` (intervertebral discs), and the transitional vertebrae ``"L6"`` and ``"T13"``.

Transitional vertebrae (VerSe 25 = L6, 28 = T13): VertebroPlan names levels C1–S1 only, and
guessing which name the radiologist would give a sixth lumbar vertebra would silently shift
every plan by one level. So they are *unnamed vertebrae*: their bone still shapes the
spinal canal, but they are not offered as levels, and the anatomy carries a warning saying
so. VerSe 26 is the whole visible sacrum; it is taken as S1 (the sacrum's top segment,
which is what a thoracolumbar CT shows of it) with a warning that its centroid is that of
all the sacrum in view.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from planning.demo.truth import LABEL_CODES as DEMO_LABEL_CODES
from planning.errors import VertebroPlanError
from planning.plan import LEVEL_NAMES

TRANSITIONAL = ("L6", "T13")
CANAL = "canal"
CANAL_HINT = "canal_hint"
DISC = "disc"
_SPECIAL_ALIASES = {
    "canal": CANAL, "spinal_canal": CANAL,
    "canal_hint": CANAL_HINT, "spinal_cord": CANAL_HINT, "cord": CANAL_HINT,
    "disc": DISC, "discs": DISC, "intervertebral_disc": DISC, "intervertebral_discs": DISC,
}
MAX_CODE = 32767  # label maps are read as int16


class LabelTableError(VertebroPlanError, ValueError):
    """A label table (preset name or JSON file) is unknown or does not make sense."""


def _frozen(d: Mapping[int, str]) -> MappingProxyType[int, str]:
    return MappingProxyType(dict(d))


@dataclass(frozen=True, eq=False)
class LabelTable:
    """What the codes of a label map mean.

    Parameters
    ----------
    name
        Shown to the user ("TotalSegmentator", "VerSe", a file name).
    levels
        code → level name (one of `planning.plan.LEVEL_NAMES`); each label is a whole
        vertebra (body and posterior elements).
    unnamed_vertebrae
        code → description of vertebrae that are bone but not plannable levels (L6, T13).
    canal_codes
        labels that *are* the spinal canal (used as is, nothing is derived).
    canal_hint_codes
        labels lying inside the canal (the spinal cord): added to the derived canal and
        used to pick the right hole.
    disc_codes
        intervertebral discs.
    notes
        code → a warning to attach to the anatomy when that code is present.
    """

    name: str
    levels: Mapping[int, str]
    unnamed_vertebrae: Mapping[int, str] = field(default_factory=lambda: _frozen({}))
    canal_codes: frozenset[int] = frozenset()
    canal_hint_codes: frozenset[int] = frozenset()
    disc_codes: frozenset[int] = frozenset()
    notes: Mapping[int, str] = field(default_factory=lambda: _frozen({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", _frozen(self.levels))
        object.__setattr__(self, "unnamed_vertebrae", _frozen(self.unnamed_vertebrae))
        object.__setattr__(self, "notes", _frozen(self.notes))
        for code, level in self.levels.items():
            if not 1 <= code <= MAX_CODE:
                raise LabelTableError(f"label table {self.name}: code {code} of {level} is "
                                      f"out of range (1–{MAX_CODE}).")
            if level not in LEVEL_NAMES:
                raise LabelTableError(f"label table {self.name}: '{level}' (code {code}) is "
                                      "not a level name (C1–C7, T1–T12, L1–L5, S1).")
        if len(set(self.levels.values())) != len(self.levels):
            raise LabelTableError(f"label table {self.name}: a level has two codes.")

    @property
    def vertebra_codes(self) -> frozenset[int]:
        """Every code that is vertebral bone: the levels and the unnamed vertebrae."""
        return frozenset(self.levels) | frozenset(self.unnamed_vertebrae)

    def code_of(self, level: str) -> int:
        """The code of a level name, or `KeyError`."""
        for code, name in self.levels.items():
            if name == level:
                return code
        raise KeyError(f"label table {self.name} has no code for {level}")


def _range_levels(first_code: int, names: list[str]) -> dict[int, str]:
    return {first_code + n: name for n, name in enumerate(names)}


_CERVICAL = [f"C{i}" for i in range(1, 8)]
_THORACIC = [f"T{i}" for i in range(1, 13)]
_LUMBAR = [f"L{i}" for i in range(1, 6)]

TOTALSEGMENTATOR = LabelTable(
    name="TotalSegmentator",
    # v2 "total" task: 26 vertebrae_S1, 27 L5 … 31 L1, 32 T12 … 43 T1, 44 C7 … 50 C1.
    levels=_range_levels(26, ["S1", *_LUMBAR[::-1], *_THORACIC[::-1], *_CERVICAL[::-1]]),
    canal_hint_codes=frozenset({79}),  # spinal_cord
)

VERSE = LabelTable(
    name="VerSe",
    levels={**_range_levels(1, [*_CERVICAL, *_THORACIC, *_LUMBAR]), 26: "S1"},
    unnamed_vertebrae={25: "L6 (transitional vertebra)", 28: "T13 (transitional vertebra)"},
    notes={26: "Label 26 (sacrum) is taken as S1; its centroid is that of all the sacrum in "
               "view."},
)

DEMO = LabelTable(
    name="VertebroPlan demo",
    levels={**{code: name for name, code in DEMO_LABEL_CODES.items() if name in LEVEL_NAMES},
            DEMO_LABEL_CODES["sacrum"]: "S1"},
    canal_codes=frozenset({DEMO_LABEL_CODES["canal"]}),
    disc_codes=frozenset({DEMO_LABEL_CODES["disc"]}),
    notes=VERSE.notes,
)

PRESETS: Mapping[str, LabelTable] = MappingProxyType({
    "totalsegmentator": TOTALSEGMENTATOR,
    "verse": VERSE,
    "demo": DEMO,
})


def load_label_table(spec: str | Path) -> LabelTable:
    """A preset by name ("totalsegmentator", "verse", "demo") or a JSON table file.

    Raises `LabelTableError` naming the file and what is wrong with it.
    """
    key = str(spec).strip().lower()
    if not isinstance(spec, Path) and key in PRESETS:
        return PRESETS[key]
    path = Path(spec)
    if not path.is_file():
        raise LabelTableError(f"'{spec}' is neither a label table preset "
                              f"({', '.join(PRESETS)}) nor an existing JSON file.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelTableError(f"'{path}' cannot be read as a JSON label table: {exc}") from exc
    try:
        return _table_from_mapping(data, path.name)
    except LabelTableError as exc:
        raise LabelTableError(f"'{path}': {exc}") from exc


def _table_from_mapping(data: Any, name: str) -> LabelTable:
    """Parse ``{"L1": 31}`` / ``{"31": "L1"}`` (mixing both is allowed) into a table."""
    if not isinstance(data, dict) or not data:
        raise LabelTableError('expected a non-empty JSON object such as {"L1": 31, "L2": 30}.')
    pairs = [pair for key, value in data.items() for pair in _pairs(key, value)]
    codes = [code for code, _ in pairs]
    repeated = sorted({c for c in codes if codes.count(c) > 1})
    if repeated:
        raise LabelTableError(f"code {repeated[0]} is given more than one meaning.")
    levels: dict[int, str] = {}
    unnamed: dict[int, str] = {}
    special: dict[str, set[int]] = {CANAL: set(), CANAL_HINT: set(), DISC: set()}
    for code, what in pairs:
        if what in special:
            special[what].add(code)
        elif what in TRANSITIONAL:
            unnamed[code] = f"{what} (transitional vertebra)"
        elif what in levels.values():
            raise LabelTableError(f"level {what} is given more than one code.")
        else:
            levels[code] = what
    if not levels:
        raise LabelTableError("it names no vertebral level (C1–C7, T1–T12, L1–L5, S1).")
    return LabelTable(name=name, levels=levels, unnamed_vertebrae=unnamed,
                      canal_codes=frozenset(special[CANAL]),
                      canal_hint_codes=frozenset(special[CANAL_HINT]),
                      disc_codes=frozenset(special[DISC]))


def _pairs(key: Any, value: Any) -> list[tuple[int, str]]:
    """(code, meaning) pairs of one JSON entry, whichever way round it is written."""
    key_code = _as_code(key)
    if key_code is not None:
        if not isinstance(value, str):
            raise LabelTableError(f'code "{key}" must map to a name, got {value!r}.')
        return [(key_code, _meaning(value))]
    meaning = _meaning(str(key))
    values = value if isinstance(value, list) else [value]
    out = []
    for v in values:
        code = _as_code(v) if not isinstance(v, str) else None
        if code is None:
            raise LabelTableError(f'"{key}" must map to a label code (1–{MAX_CODE}), '
                                  f"got {v!r}.")
        out.append((code, meaning))
    if not out:
        raise LabelTableError(f'"{key}" has no label code.')
    return out


def _as_code(value: Any) -> int | None:
    """A label code from an int or a digit string, or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        code = value
    elif isinstance(value, str) and value.strip().isdigit():
        code = int(value.strip())
    else:
        return None
    if not 1 <= code <= MAX_CODE:
        raise LabelTableError(f"label code {code} is out of range (1–{MAX_CODE}; 0 is "
                              "background).")
    return code


def _meaning(text: str) -> str:
    """Canonical meaning of a name: a level, a transitional vertebra, or a special label."""
    word = text.strip().lower().replace(" ", "_").replace("-", "_")
    if word in _SPECIAL_ALIASES:
        return _SPECIAL_ALIASES[word]
    level = text.strip().upper()
    if level in LEVEL_NAMES or level in TRANSITIONAL:
        return level
    raise LabelTableError(f"'{text}' is not a vertebral level (C1–C7, T1–T12, L1–L5, S1, "
                          "L6, T13) nor canal, canal_hint or disc.")
