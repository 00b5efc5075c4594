"""The study a plan's exports are filed in, for a CT whose Study or Series UID is blank.

Why: anonymisers often blank StudyInstanceUID and SeriesInstanceUID. The SR, SEG and the
encapsulated PDF report must each name a study (and the SR and SEG the CT's series), and a
PACS files objects together only when they share one. So, once per plan, VertebroPlan
creates the missing UIDs, stores them in the plan (``Plan.study_uid`` / ``series_uid``) and
every export of that plan — now or after the plan is saved and reopened — uses the same
ones. A CT that has its own UIDs is never given new ones: they would split its study.
"""

from __future__ import annotations

from dataclasses import replace

from pydicom.uid import generate_uid

from planning.io.dicom_series import missing_uid_names
from planning.plan import Plan
from planning.volume import Volume


def missing_uids(volume: Volume) -> list[str]:
    """The UIDs the CT lacks, as words: ["Study Instance UID", "Series Instance UID"]."""
    return missing_uid_names(volume.study_uid, volume.series_uid)


def with_export_uids(plan: Plan, volume: Volume) -> tuple[Plan, bool]:
    """``plan`` carrying the study and series UIDs its exports use, and whether it changed
    (the caller then keeps the new plan: its UIDs must not change again).

    The CT's own UIDs win; a plan made on a UID-less CT keeps the ones it was given at its
    first export; only what neither has is created.
    """
    if not missing_uids(volume):
        return plan, False
    study = volume.study_uid or plan.study_uid or generate_uid()
    series = volume.series_uid or plan.series_uid or generate_uid()
    if (study, series) == (plan.study_uid, plan.series_uid):
        return plan, False
    return replace(plan, study_uid=study, series_uid=series), True


def volume_for_export(volume: Volume, plan: Plan) -> Volume:
    """The CT as the exports name it: its blank UIDs filled in from ``plan``."""
    if not missing_uids(volume):
        return volume
    return replace(volume, study_uid=volume.study_uid or plan.study_uid,
                   series_uid=volume.series_uid or plan.series_uid)


def created_uids_note(plan: Plan, volume: Volume) -> str:
    """The report's sentence on UIDs VertebroPlan made ("" when the CT has its own)."""
    missing = missing_uids(volume)
    if not missing:
        return ""
    return (f"The CT has no {' and '.join(missing)}: VertebroPlan created study "
            f"{plan.study_uid} (CT series {plan.series_uid}) for this plan's exports and "
            "keeps them in the plan, so that its PDF, SR, SEG and later exports share one "
            "study. Filed there, not in the CT's original study.")
