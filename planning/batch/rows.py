"""One row per level of a planned study: the columns of ``results.parquet`` / ``.csv``.

Why one row per level: a research question ("how wide are the pedicles of fractured L1s",
"how often does the plan fall short of 3 mm from the canal") is asked per vertebra, and a
table of levels answers it with a filter and a group-by.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from planning.batch.inputs import StudyTask
from planning.plan import Side, level_index

COLUMNS = ("study_key", "input", "study_uid", "series_uid", "level", "name_confidence",
           "names_uncertain", "genant_grade", "fracture_shape", "fractured",
           "pedicle_width_left_mm", "pedicle_width_right_mm", "body_volume_ml",
           "needles_planned", "min_canal_clearance_mm", "status", "warnings", "error")
_STATUS_ORDER = {"safe": 0, "caution": 1, "unsafe": 2}


def level_rows(task: StudyTask, anatomy: Any, assessment: Mapping[str, Any],
               proposal: Any | None, pedicle_widths: Mapping[str, Mapping[Side, float]],
               planned_levels: list[str], notes: Mapping[str, str]) -> list[dict[str, Any]]:
    """The rows of one study: every level found, with its assessment and its needles."""
    from planning.anatomy.model import names_uncertain

    uncertain = names_uncertain(anatomy)
    rows = []
    for name, geo in sorted(anatomy.levels.items(), key=lambda kv: level_index(kv[0])):
        a = assessment.get(name)
        fracture = None if a is None else a.fracture
        needles, clearances, statuses = 0, [], []
        if proposal is not None:
            for t in proposal.plan.trajectories:
                if t.level == name:
                    needles += 1
                    result = proposal.results[t.key]
                    clearances.append(float(result.canal_clearance_mm))
                    statuses.append(result.status.value)
        if statuses:
            status = max(statuses, key=lambda s: _STATUS_ORDER.get(s, 3))
        elif name in planned_levels:
            status = "not planned"
        else:
            status = "not asked"
        warnings = [notes[name]] if name in notes else []
        if uncertain:
            warnings.append("level names uncertain")
        widths = pedicle_widths.get(name, {})
        rows.append(row(
            task, level=name, name_confidence=round(float(geo.confidence), 2),
            names_uncertain=uncertain,
            genant_grade=None if a is None else a.genant_grade,
            fracture_shape=None if fracture is None else fracture.shape,
            fractured=None if a is None else bool(a.fractured),
            pedicle_width_left_mm=_round(widths.get(Side.LEFT)),
            pedicle_width_right_mm=_round(widths.get(Side.RIGHT)),
            body_volume_ml=None if a is None else _round(a.body_volume_ml),
            needles_planned=needles,
            min_canal_clearance_mm=_round(min(clearances)) if clearances else None,
            status=status, warnings="; ".join(warnings)))
    if not rows:
        rows.append(row(task, status="no levels", warnings="; ".join(anatomy.warnings)))
    return rows


def row(task: StudyTask, **values: Any) -> dict[str, Any]:
    """A row with every column (None where not given)."""
    base: dict[str, Any] = dict.fromkeys(COLUMNS)
    base.update(study_key=task.key, input=task.source, study_uid=task.study_uid,
                series_uid=task.series_uid)
    base.update(values)
    return base


def failure_row(task: StudyTask, error: str) -> dict[str, Any]:
    return row(task, status="failed", error=error)


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)
