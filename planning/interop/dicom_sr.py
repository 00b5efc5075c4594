"""A plan as a DICOM Comprehensive 3D SR (read back by `planning.interop.plan_from_sr`).

Why an SR: the angio suite's PACS files it into the CT's own study (same StudyInstanceUID,
patient and study modules copied from the CT), and any DICOM viewer shows the needle paths
in the CT's Frame of Reference. The document is a TID 1500 Measurement Report built with
highdicom; each needle is one TID 1501 Measurement Group::

    Imaging Measurement Report (126000, DCM)              TID 1500, root
    ├ Language, Observer = device "VertebroPlan", Procedure reported = CT (25045-6, LN)
    ├ Imaging Measurements (126010, DCM)
    │ └ Measurement Group (125007, DCM)                    one per trajectory, TID 1501
    │   ├ Tracking Identifier "Left L1 needle path", Tracking Unique Identifier
    │   ├ Finding = Needle (79068005, SCT)
    │   ├ Finding Site = L1 vertebra (66794005, SCT) ─ Laterality = Left (7771000, SCT)
    │   ├ NUM Length (410668003, SCT) [mm]
    │   │ └ INFERRED FROM SCOORD3D POLYLINE [entry, tip] in the CT's Frame of Reference
    │   ├ NUM Needle outer diameter, canal clearance, tip to anterior cortex [mm],
    │   │     medial angle (+ towards the midline) and tilt to the axial plane (+ tip towards
    │   │     the feet) [deg], to the patient's and to the vertebra's planes
    │   ├ CONTAINER C-arm bull's-eye working view, then C-arm progression working view
    │   │   ├ NUM Positioner Primary Angle (112011, DCM), Positioner Secondary Angle
    │   │   │     (112012, DCM) [deg]: referenced to the patient, PS3.3 C.8.7.5
    │   │   ├ CODE Patient Orientation (113743, DCM) = recumbent (102538003, SCT)
    │   │   │   └ HAS CONCEPT MOD Patient Orientation Modifier (113744, DCM) = prone / supine
    │   │   ├ CODE Patient Table Relationship (113745, DCM) = headfirst (102540008, SCT)
    │   │   ├ NUM primary / secondary angle on a C-arm registered head-first supine [deg]
    │   │   └ TEXT Detector position in words
    │   ├ NUM Canal wall uncertainty at the needle [mm] and TEXT Canal wall at the needle
    │   │     ("bone" / "soft tissue"): on an automatic canal only (planning.canal_margin)
    │   └ TEXT Needle Gauge (111465, DCM) "11G", safety status, breach grade, findings,
    │         Comment (121106, DCM) = the trajectory's note
    └ Qualitative Evaluations (C0034375, UMLS)
      └ TEXT Comment "For research and training — not for clinical use"

Coordinates are DICOM patient LPS millimetres, written as given (no flip, no resampling).
SCOORD3D stores float32: its rounding error is below 0.004 mm for any coordinate within
65 m of the origin, so the round trip keeps the plan's 0.01 mm tolerance without extra
items. The polyline runs entry → tip; `planning.interop.plan_from_sr.read_plan_sr`, which
reads the plan back, relies on that order.

Codes: all concepts, standard and local (``99VPLAN``), are those of
`planning.interop.dicom_codes`, where their sources are given.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from highdicom.sr import (
    CodeContentItem,
    Comprehensive3DSR,
    ContainerContentItem,
    ContentSequence,
    CoordinatesForMeasurement3D,
    DeviceObserverIdentifyingAttributes,
    FindingSite,
    GraphicTypeValues3D,
    Measurement,
    MeasurementReport,
    MeasurementsAndQualitativeEvaluations,
    NumContentItem,
    ObservationContext,
    ObserverContext,
    RelationshipTypeValues,
    TextContentItem,
    TrackingIdentifier,
)
from pydicom.dataset import Dataset
from pydicom.sr.coding import Code
from pydicom.uid import CTImageStorage, generate_uid

from planning.carm import CArmSetting, PatientPosition, working_views
from planning.checks import CheckResult
from planning.errors import VertebroPlanError
from planning.interop.derived_dicom import (
    CHARACTER_SET,
    MODEL_NAME,
    VERTEBROPLAN,
    Authoring,
    ct_series_header,
    instance_header,
    refuse_plan_of_other_ct,
    save_dicom,
)
from planning.interop.dicom_codes import (
    APPROACH,
    BREACH_GRADE,
    CANAL_CLEARANCE,
    CANAL_WALL,
    CANAL_WALL_UNCERTAINTY,
    CARM_VIEWS,
    CC_ANGLE,
    CC_ANGLE_VERTEBRA,
    CHECK_FINDING,
    COMMENT,
    DEGREE,
    DETECTOR_WORDS,
    FRACTURE_SHAPE,
    HEADFIRST,
    LATERALITY,
    LEAKAGE_RISK,
    LENGTH,
    LEVEL_ASSESSMENT,
    LEVEL_CODES,
    LEVEL_NAME,
    LEVEL_NUMS,
    LOCAL_SCHEME_ITEM,
    MEDIAL_ANGLE,
    MEDIAL_ANGLE_VERTEBRA,
    ML,
    MM,
    NEEDLE,
    NEEDLE_GAUGE,
    NO_UNITS,
    OBSERVER_DEVICE,
    OUTER_DIAMETER,
    PATIENT_ORIENTATION,
    PATIENT_ORIENTATION_MODIFIER,
    PATIENT_TABLE_RELATIONSHIP,
    PERCENT,
    POSITION_CODES,
    POSITIONER_PRIMARY,
    POSITIONER_SECONDARY,
    PROCEDURE_REPORTED,
    QUALITATIVE_EVALUATIONS,
    RECUMBENT,
    SAFETY_STATUS,
    TABLE_PRIMARY,
    TABLE_SECONDARY,
    TIP_BONE_SIDES,
    TIP_TO_CORTEX,
    VESSEL_CLEARANCE,
)
from planning.plan import GAUGES, Plan, Side, Trajectory
from planning.vocabulary import DISCLAIMER
from planning.volume import Volume

SERIES_DESCRIPTION = "VertebroPlan needle plan (not for clinical use)"
DEFAULT_SERIES_NUMBER = 900
DEVICE_UID = generate_uid(entropy_srcs=["VertebroPlan SR device observer"])

RESULT_LENGTH_TOLERANCE_MM = 0.01
NUM_DECIMALS = 2


class SRExportError(VertebroPlanError, ValueError):
    """A plan cannot be written as a DICOM SR (nothing to write, or the wrong CT)."""


def write_plan_sr(
    path: str | Path,
    plan: Plan,
    results: Mapping[tuple[str, Side], CheckResult],
    volume: Volume,
    *,
    authoring: Authoring = VERTEBROPLAN,
    position: PatientPosition = "prone",
    assessment: Mapping[str, Any] | None = None,
    uncertain_levels: Collection[str] | None = None,
) -> Path:
    """Write ``plan`` on ``volume`` as a Comprehensive 3D SR file (atomically).

    Parameters
    ----------
    path
        The file to write; its folder is created. A crash mid-write leaves any previous
        file intact.
    plan
        The trajectories, in LPS mm of ``volume``'s Frame of Reference.
    results
        Check results keyed by ``(level, side)``; a trajectory without one is written
        with its geometry, gauge and length only.
    volume
        The CT the plan was made on: patient, study, Frame of Reference and (when loaded
        from DICOM) the image instances the SR references.
    authoring
        General Equipment of the SR (and the device observer of the report), its series
        and instance numbers (series `DEFAULT_SERIES_NUMBER` unless given) and the
        de-identification of the result.
    position
        How the patient lies on the angio table (prone or supine): the C-arm working views
        written per needle are for it, and it is coded beside them (they mean nothing
        without it). Each view carries both conventions (`planning.carm`), each named.
    assessment
        `planning.assessment.levels.assess_levels` result: one more group per planned level
        with its heights, height loss, Genant grade, retropulsion, body and cement volumes,
        pedicle widths as numbers, the fracture shape and the leakage risks as text.
    uncertain_levels
        Levels whose automatic names are uncertain (`planning.anatomy.model.names_uncertain`):
        each needle's group then says "uncertain" under "Level name", else "as found";
        None (no automatic anatomy) writes no such item.

    Returns
    -------
    Path
        ``path``, written whole (never a part of an SR).

    Raises
    ------
    SRExportError
        The plan is empty, was made on another CT, the CT has no Frame of Reference UID,
        or a result does not belong to the plan's current needle.
    """
    p = Path(path)
    frame_uid = _check_exportable(plan, results, volume)
    groups = [_group(t, results.get(t.key), frame_uid, position,
                     None if uncertain_levels is None else t.level in uncertain_levels)
              for t in plan.trajectories]
    groups += [_level_group(assessment[level]) for level in plan.levels
               if assessment is not None and level in assessment]
    report = MeasurementReport(
        observation_context=ObservationContext(
            observer_device_context=ObserverContext(
                observer_type=OBSERVER_DEVICE,
                observer_identifying_attributes=DeviceObserverIdentifyingAttributes(
                    uid=DEVICE_UID,
                    name="VertebroPlan",
                    manufacturer_name=authoring.manufacturer,
                    model_name=MODEL_NAME,
                ),
            )
        ),
        procedure_reported=PROCEDURE_REPORTED,
        imaging_measurements=groups,
    )
    root = report[0]
    disclaimer = ContainerContentItem(
        name=QUALITATIVE_EVALUATIONS, relationship_type=RelationshipTypeValues.CONTAINS
    )
    disclaimer.ContentSequence = ContentSequence([_text(COMMENT, DISCLAIMER)])
    root.ContentSequence.append(disclaimer)

    study_uid = volume.study_uid or generate_uid()
    evidence = _evidence(volume, study_uid)
    sr = Comprehensive3DSR(
        evidence=evidence,
        content=root,
        **authoring.new_instance(DEFAULT_SERIES_NUMBER),
        is_complete=True,
        is_final=False,
        is_verified=False,
        institution_name=volume.patient.institution or None,
        series_description=SERIES_DESCRIPTION,
        coding_schemes=[LOCAL_SCHEME_ITEM],
        specific_character_set=CHARACTER_SET,
    )
    if not volume.source_instances:  # the placeholder only carried patient and study
        del sr.CurrentRequestedProcedureEvidenceSequence
    dataset = authoring.finish(sr)
    save_dicom(dataset, p)
    return p


def _check_exportable(
    plan: Plan, results: Mapping[tuple[str, Side], CheckResult], volume: Volume
) -> str:
    """The Frame of Reference UID to write, after refusing what would mislead a reader."""
    if not plan.trajectories:
        raise SRExportError("The plan has no needle trajectories: there is nothing to export.")
    frame_uid = volume.frame_of_reference_uid
    if not frame_uid:
        raise SRExportError(
            "The CT has no Frame of Reference UID, so a DICOM SR could not place the needles "
            "in it. Export the plan as a plan file or PDF instead."
        )
    refuse_plan_of_other_ct(plan, frame_uid, SRExportError,
                            "its coordinates would be placed wrongly in this CT's study.")
    for t in plan.trajectories:
        r = results.get(t.key)
        if r is not None and abs(r.length_mm - t.length_mm) > RESULT_LENGTH_TOLERANCE_MM:
            raise SRExportError(
                f"The check result of {t.label} is for another needle position "
                f"({r.length_mm:.1f} mm long, the needle is {t.length_mm:.1f} mm): "
                "re-run the checks before exporting."
            )
    return frame_uid


def _text(name: Code, value: str) -> TextContentItem:
    return TextContentItem(
        name=name, value=value, relationship_type=RelationshipTypeValues.CONTAINS
    )


def _num(name: Code, value: float, unit: Code) -> Measurement:
    """A TID 300 measurement, rounded to what a reader can act on (0.01 mm, 0.01°)."""
    return Measurement(name=name, value=_rounded(value), unit=unit)


def _rounded(value: float) -> float:
    return round(float(value), NUM_DECIMALS) + 0.0  # + 0.0: no "-0.0" in the file


def _group(
    t: Trajectory, result: CheckResult | None, frame_uid: str,
    position: PatientPosition = "prone", name_uncertain: bool | None = None,
) -> MeasurementsAndQualitativeEvaluations:
    """One needle: where it is (level, side, path) and what the checks found."""
    path = np.array([t.entry_lps, t.target_lps], dtype=np.float64)
    length = Measurement(
        name=LENGTH,
        value=_rounded(t.length_mm),
        unit=MM,
        referenced_coordinates=[
            CoordinatesForMeasurement3D(
                graphic_type=GraphicTypeValues3D.POLYLINE,
                graphic_data=path,
                frame_of_reference_uid=frame_uid,
            )
        ],
    )
    measurements = [length, _num(OUTER_DIAMETER, GAUGES[t.gauge].outer_diameter_mm, MM)]
    texts: list[Any] = [_text(NEEDLE_GAUGE, t.gauge)]
    texts += [_carm_view(CARM_VIEWS[key], view)
              for key, view in working_views(t, position).items()]
    if name_uncertain is not None:
        texts.append(_text(LEVEL_NAME, "uncertain" if name_uncertain else "as found"))
    if result is not None:
        measurements += [
            _num(CANAL_CLEARANCE, result.canal_clearance_mm, MM),
            _num(MEDIAL_ANGLE, result.medial_angle_deg, DEGREE),
            _num(CC_ANGLE, result.craniocaudal_angle_deg, DEGREE),
            _num(MEDIAL_ANGLE_VERTEBRA, result.medial_angle_vertebra_deg, DEGREE),
            _num(CC_ANGLE_VERTEBRA, result.craniocaudal_angle_vertebra_deg, DEGREE),
        ]
        if result.tip_to_anterior_cortex_mm is not None:
            measurements.append(_num(TIP_TO_CORTEX, result.tip_to_anterior_cortex_mm, MM))
        if result.canal_margin is not None:  # an automatic canal: how far to trust it here
            measurements.append(_num(CANAL_WALL_UNCERTAINTY,
                                     result.canal_margin.uncertainty_mm, MM))
            texts.append(_text(CANAL_WALL, "soft tissue" if result.canal_margin.soft_wall
                               else "bone"))
        # what the image itself shows (vessels found in the CT, bone around the tip)
        if result.vessel_clearance_mm is not None:
            measurements.append(_num(VESSEL_CLEARANCE, result.vessel_clearance_mm, MM))
        if result.tip_walled_directions is not None:
            measurements.append(_num(TIP_BONE_SIDES, float(result.tip_walled_directions),
                                     NO_UNITS))
        texts.append(_text(APPROACH, result.approach))
        texts += [
            _text(SAFETY_STATUS, result.status.value),
            _text(BREACH_GRADE, result.breach_grade),
            *(_text(CHECK_FINDING, reason) for reason in result.reasons),
        ]
    if t.note:
        texts.append(_text(COMMENT, t.note))
    group = MeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(
            uid=generate_uid(), identifier=f"{t.label} needle path"
        ),
        finding_type=NEEDLE,
        finding_sites=[FindingSite(LEVEL_CODES[t.level], laterality=LATERALITY[t.side])],
        measurements=measurements,
    )
    group[0].ContentSequence.extend(texts)
    return group


def _carm_view(name: Code, view: CArmSetting) -> ContainerContentItem:
    """One working view as a group: DICOM's patient-referenced positioner angles, the
    patient's position (coded as in TID 10003), the angles a C-arm registered head-first
    supine displays, and the detector's position in words."""
    def num(concept: Code, value: float) -> NumContentItem:
        return NumContentItem(name=concept, value=_rounded(value), unit=DEGREE,
                              relationship_type=RelationshipTypeValues.CONTAINS)

    orientation = CodeContentItem(name=PATIENT_ORIENTATION, value=RECUMBENT,
                                  relationship_type=RelationshipTypeValues.CONTAINS)
    orientation.ContentSequence = ContentSequence([CodeContentItem(
        name=PATIENT_ORIENTATION_MODIFIER, value=POSITION_CODES[view.position],
        relationship_type=RelationshipTypeValues.HAS_CONCEPT_MOD)])
    container = ContainerContentItem(name=name,
                                     relationship_type=RelationshipTypeValues.CONTAINS)
    container.ContentSequence = ContentSequence([
        num(POSITIONER_PRIMARY, view.patient.primary_deg),
        num(POSITIONER_SECONDARY, view.patient.secondary_deg),
        orientation,
        CodeContentItem(name=PATIENT_TABLE_RELATIONSHIP, value=HEADFIRST,
                        relationship_type=RelationshipTypeValues.CONTAINS),
        num(TABLE_PRIMARY, view.table.primary_deg),
        num(TABLE_SECONDARY, view.table.secondary_deg),
        _text(DETECTOR_WORDS, view.words),
    ])
    return container


def _level_group(a: Any) -> MeasurementsAndQualitativeEvaluations:
    """One planned level's assessment (a `LevelAssessment`), numbers with UCUM units."""
    measurements: list[Measurement] = []
    f = a.fracture
    if f is not None:
        h = f.heights
        measurements += [_num(LEVEL_NUMS["anterior"], h.anterior_mm, MM),
                         _num(LEVEL_NUMS["middle"], h.middle_mm, MM),
                         _num(LEVEL_NUMS["posterior"], h.posterior_mm, MM),
                         _num(LEVEL_NUMS["loss"], 100.0 * max(f.worst_loss, 0.0), PERCENT),
                         _num(LEVEL_NUMS["retropulsion"], f.retropulsion.displacement_mm, MM)]
        if f.genant_grade is not None:
            measurements.append(_num(LEVEL_NUMS["grade"], float(f.genant_grade), NO_UNITS))
    if a.body_volume_ml is not None and a.cement_ml_total is not None:
        lo, hi = a.cement_ml_total
        measurements += [_num(LEVEL_NUMS["body_ml"], a.body_volume_ml, ML),
                         _num(LEVEL_NUMS["cement_low"], lo, ML),
                         _num(LEVEL_NUMS["cement_high"], hi, ML)]
    for side, p in a.pedicles.items():
        measurements.append(_num(LEVEL_NUMS[f"pedicle_{side.value}"], p.width_mm, MM))
    texts = [_text(COMMENT, a.fracture_summary())]
    if f is not None:
        texts.append(_text(FRACTURE_SHAPE, f.shape))
    texts += [_text(LEAKAGE_RISK, flag.why) for flag in a.present_flags]
    group = MeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(
            uid=generate_uid(), identifier=f"{a.level} level assessment"),
        finding_type=LEVEL_ASSESSMENT,
        finding_sites=[FindingSite(LEVEL_CODES[a.level])],
        measurements=measurements,
    )
    group[0].ContentSequence.extend(texts)
    return group


def _evidence(volume: Volume, study_uid: str) -> list[Dataset]:
    """Header-only datasets of the CT images, from which the SR takes its patient and study
    modules and its references to the CT series.

    A volume without instance UIDs (NIfTI) gets one placeholder that carries the patient
    and study only; its reference is removed from the SR afterwards.
    """
    base = ct_series_header(volume, study_uid)
    instances = [(i.sop_class_uid, i.sop_instance_uid) for i in volume.source_instances]
    return [instance_header(base, sop_class, sop_instance)
            for sop_class, sop_instance in instances or [(CTImageStorage, generate_uid())]]


__all__ = [
    "DISCLAIMER",
    "LATERALITY",
    "LEVEL_CODES",
    "SRExportError",
    "write_plan_sr",
]
