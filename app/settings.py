"""Persistent user settings (QSettings): default gauge, check thresholds, window layout.

``$VERTEBROPLAN_SETTINGS`` names an INI file to use instead of the platform's store, so
tests (and a locked-down workstation) never touch the user's real settings.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings

from planning.assessment.cement import DEFAULT_FILL_RANGE
from planning.carm import CONVENTIONS, DEFAULT_CONVENTION, Convention
from planning.checks import SafetyLimits
from planning.fluoro_views import DEFAULT_SOURCE_TO_DETECTOR_MM, DEFAULT_SOURCE_TO_PATIENT_MM
from planning.pacs import DEFAULT_LOCAL_AE, DEFAULT_LOCAL_PORT
from planning.plan import DEFAULT_GAUGE, GAUGES

if TYPE_CHECKING:
    from planning.pacs.node import LocalAE

SETTINGS_ENV = "VERTEBROPLAN_SETTINGS"
LIMIT_KEYS = ("canal_caution_mm", "anterior_cortex_warn_mm", "midline_max_mm",
              "pair_min_distance_mm")


def open_settings() -> QSettings:
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings("VertebroPlan", "VertebroPlan")


def carm_distances(settings: QSettings) -> tuple[float, float]:
    """(source–detector, source–isocentre) mm of the simulated C-arm; defaults 1200 / 800."""
    def number(key: str, default: float) -> float:
        try:
            return float(settings.value(key, default))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return default

    return (number("carm/source_to_detector_mm", DEFAULT_SOURCE_TO_DETECTOR_MM),
            number("carm/source_to_isocentre_mm", DEFAULT_SOURCE_TO_PATIENT_MM))


def carm_convention(settings: QSettings) -> Convention:
    """Which C-arm angle convention leads (Edit ▸ Settings); the default where unset or
    edited into something else."""
    value = str(settings.value("carm/convention", DEFAULT_CONVENTION))
    return value if value in CONVENTIONS else DEFAULT_CONVENTION  # type: ignore[return-value]


def cement_fill_range(settings: QSettings) -> tuple[float, float]:
    """The cement fill range (fractions of the body volume); 15–30 % where the stored
    values are missing, invalid or not low < high."""
    try:
        low = float(settings.value("assessment/fill_low_pct", 100 * DEFAULT_FILL_RANGE[0]))  # type: ignore[arg-type]
        high = float(settings.value("assessment/fill_high_pct", 100 * DEFAULT_FILL_RANGE[1]))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return DEFAULT_FILL_RANGE
    if not 1.0 <= low < high <= 80.0:
        return DEFAULT_FILL_RANGE
    return (low / 100.0, high / 100.0)


def store_cement_fill_range(settings: QSettings, fill_range: tuple[float, float]) -> None:
    settings.setValue("assessment/fill_low_pct", round(100 * fill_range[0], 1))
    settings.setValue("assessment/fill_high_pct", round(100 * fill_range[1], 1))


def default_gauge(settings: QSettings) -> str:
    value = str(settings.value("plan/default_gauge", DEFAULT_GAUGE))
    return value if value in GAUGES else DEFAULT_GAUGE


def limits(settings: QSettings) -> SafetyLimits:
    """The check thresholds, the defaults where a stored value is missing or invalid."""
    base = SafetyLimits()
    values = {}
    for key in LIMIT_KEYS:
        raw = settings.value(f"checks/{key}")
        try:
            value = float(raw) if raw is not None else None
        except (TypeError, ValueError):
            value = None
        if value is not None and 0.0 <= value <= 100.0:
            values[key] = value
    return dataclasses.replace(base, **values)


def store_limits(settings: QSettings, value: SafetyLimits) -> None:
    for key in LIMIT_KEYS:
        settings.setValue(f"checks/{key}", float(getattr(value, key)))


# ---- PACS (query/retrieve) ------------------------------------------------------------
def pacs_nodes(settings: QSettings) -> list[str]:
    """The configured PACS nodes, as typed (``AET@HOST:PORT`` or a DICOMweb URL)."""
    raw = settings.value("pacs/nodes", [])
    values = [raw] if isinstance(raw, str) else list(raw or [])  # type: ignore[arg-type]
    return [str(v).strip() for v in values if str(v).strip()]


def store_pacs(settings: QSettings, nodes: list[str], ae_title: str, port: int,
               method: str) -> None:
    settings.setValue("pacs/nodes", list(nodes))
    settings.setValue("pacs/ae_title", ae_title)
    settings.setValue("pacs/port", int(port))
    settings.setValue("pacs/method", method if method in ("get", "move") else "get")


def local_ae(settings: QSettings) -> LocalAE:
    """This workstation as a DICOM node; the defaults where the stored values are invalid."""
    from planning.pacs.node import LocalAE  # the DICOM stack: not at the window's start

    try:
        return LocalAE(str(settings.value("pacs/ae_title", DEFAULT_LOCAL_AE)),
                       int(settings.value("pacs/port", DEFAULT_LOCAL_PORT)))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return LocalAE()


def retrieve_method(settings: QSettings) -> str:
    value = str(settings.value("pacs/method", "get"))
    return value if value in ("get", "move") else "get"
