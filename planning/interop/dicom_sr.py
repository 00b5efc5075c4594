"""A plan as a DICOM Comprehensive 3D SR, and the plan read back from one.

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
items. The polyline runs entry → tip; `read_plan_sr` relies on that order.

Codes: the vertebrae C1–L5 are those of DICOM PS3.16 CID 7603 "Vertebra" (SNOMED CT, as
pydicom's code dictionary lists them); S1, absent from CID 7603, is SNOMED CT 65985001
"Structure of first sacral vertebra". Laterality, Needle, Length and Finding Site are
SNOMED CT codes used by DICOM; concepts no standard names (medial angle, canal clearance,
…) use the local coding scheme ``99VPLAN``, declared in the Coding Scheme Identification
Sequence as DICOM requires for private schemes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from highdicom.coding_schemes import CodingSchemeIdentificationItem
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
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import Comprehensive3DSRStorage, CTImageStorage, generate_uid

from planning.atomic_file import atomic_open
from planning.carm import CArmSetting, PatientPosition, working_views
from planning.checks import CheckResult
from planning.errors import VertebroPlanError
from planning.interop.plan_file import PlanFormatError
from planning.io.dicom_headers import PARSE_ERRORS, parse_problem, read_whole_dicom
from planning.plan import (
    DEFAULT_GAUGE,
    GAUGES,
    LEVEL_NAMES,
    Plan,
    PlanError,
    Side,
    Trajectory,
    gauge,
)
from planning.vocabulary import DISCLAIMER
from planning.volume import PatientInfo, Volume

SERIES_DESCRIPTION = "VertebroPlan needle plan (not for clinical use)"
DEFAULT_SERIES_NUMBER = 900
# UTF-8: the disclaimer's dash and any patient name survive, whatever the CT's character set.
CHARACTER_SET = "ISO_IR 192"
DEVICE_UID = generate_uid(entropy_srcs=["VertebroPlan SR device observer"])

LOCAL_SCHEME = "99VPLAN"
_LOCAL_SCHEME_ITEM = CodingSchemeIdentificationItem(
    designator=LOCAL_SCHEME,
    name="VertebroPlan local codes",
    responsible_organization="VertebroPlan",
)


def _local(value: str, meaning: str) -> Code:
    return Code(value, LOCAL_SCHEME, meaning)


OUTER_DIAMETER = _local("outer-diameter", "Needle outer diameter")
CANAL_CLEARANCE = _local("canal-clearance", "Needle clearance to spinal canal")
TIP_TO_CORTEX = _local("tip-to-cortex", "Tip to anterior cortex distance")
# the needle's angles: the sign is in the concept's name, so no reader has to guess it
MEDIAL_ANGLE = _local("medial-angle-m", "Needle medial angle to sagittal plane, + to midline")
CC_ANGLE = _local("caudal-tilt", "Needle tilt to axial plane, + tip towards the feet")
MEDIAL_ANGLE_VERTEBRA = _local("vert-medial-m",
                               "Needle medial angle to vertebra sagittal plane, + to midline")
CC_ANGLE_VERTEBRA = _local("vert-caudal-tilt",
                           "Needle tilt to vertebra axial plane, + tip towards the feet")
# C-arm working views: DICOM's own positioner angles (patient-referenced, PS3.3 C.8.7.5)
CARM_VIEWS = {
    "bulls_eye": _local("bulls-eye-view", "C-arm bull's-eye working view"),
    "progression": _local("progress-view", "C-arm progression working view"),
}
POSITIONER_PRIMARY = codes.DCM.PositionerPrimaryAngle  # 112011
POSITIONER_SECONDARY = codes.DCM.PositionerSecondaryAngle  # 112012
PATIENT_ORIENTATION = codes.DCM.PatientOrientation  # 113743, CID 19
PATIENT_ORIENTATION_MODIFIER = codes.DCM.PatientOrientationModifier  # 113744, CID 20
PATIENT_TABLE_RELATIONSHIP = codes.DCM.PatientTableRelationship  # 113745, CID 21
RECUMBENT = codes.SCT.Recumbent
HEADFIRST = codes.SCT.Headfirst
POSITION_CODES: Mapping[str, Code] = MappingProxyType(
    {"prone": codes.SCT.Prone, "supine": codes.SCT.Supine})
TABLE_PRIMARY = _local("carm-hfs-primary", "Primary angle on a C-arm registered head-first supine")
TABLE_SECONDARY = _local("carm-hfs-second",
                         "Secondary angle on a C-arm registered head-first supine")
DETECTOR_WORDS = _local("detector-words", "Detector position in words")
SAFETY_STATUS = _local("safety-status", "Safety check status")
BREACH_GRADE = _local("breach-grade", "Canal breach grade (Gertzbein-Robbins)")
CHECK_FINDING = _local("check-finding", "Safety check finding")
VESSEL_CLEARANCE = _local("vessel-clearance", "Needle clearance to contrast-filled vessel")
TIP_BONE_SIDES = _local("tip-bone-sides", "Directions from the tip in bone, of 14")
APPROACH = _local("approach", "Needle approach")
LEVEL_NAME = _local("level-name", "Level name certainty")
# the automatic canal's wall where the needle passes it most tightly (planning.canal_margin)
CANAL_WALL_UNCERTAINTY = _local("canal-wall-unc", "Canal wall uncertainty at the needle")
CANAL_WALL = _local("canal-wall", "Canal wall at the needle")

QUALITATIVE_EVALUATIONS = Code("C0034375", "UMLS", "Qualitative Evaluations")  # TID 1500
PROCEDURE_REPORTED = codes.LN.CTUnspecifiedBodyRegion  # CID 100: the plan measures a CT
NEEDLE = codes.SCT.Needle
NEEDLE_GAUGE = codes.DCM.NeedleGauge
COMMENT = codes.DCM.Comment
MM = codes.UCUM.Millimeter
DEGREE = codes.UCUM.Degree
ML = Code("ml", "UCUM", "milliliter")
PERCENT = codes.UCUM.Percent
NO_UNITS = codes.UCUM.NoUnits

# the level assessment (planning.assessment): a group per level, finding LEVEL_ASSESSMENT
LEVEL_ASSESSMENT = _local("level-assess", "Vertebral level assessment")
LEVEL_NUMS = {
    "anterior": _local("height-ant", "Vertebral body anterior height"),
    "middle": _local("height-mid", "Vertebral body middle height"),
    "posterior": _local("height-post", "Vertebral body posterior height"),
    "loss": _local("height-loss", "Vertebral body height loss"),
    "grade": _local("genant-grade", "Genant semiquantitative fracture grade"),
    "retropulsion": _local("retropulsion", "Posterior wall displacement into the canal"),
    "body_ml": _local("body-volume", "Vertebral body volume"),
    "cement_low": _local("cement-low", "Planned cement volume, low"),
    "cement_high": _local("cement-high", "Planned cement volume, high"),
    "pedicle_left": _local("pedicle-w-left", "Left pedicle isthmus width"),
    "pedicle_right": _local("pedicle-w-right", "Right pedicle isthmus width"),
}
FRACTURE_SHAPE = _local("fracture-shape", "Fracture shape")
LEAKAGE_RISK = _local("leakage-risk", "Cement leakage risk")

# C1–L5: DICOM PS3.16 CID 7603 "Vertebra" (pydicom's code dictionary, keyword "L1Vertebra"
# → 66794005 "L1 vertebra"); S1 is not in CID 7603: SNOMED CT 65985001.
LEVEL_CODES: Mapping[str, Code] = MappingProxyType(
    {
        name: Code("65985001", "SCT", "S1 vertebra")
        if name == "S1"
        else getattr(codes.SCT, f"{name}Vertebra")
        for name in LEVEL_NAMES
    }
)
_LEVEL_BY_CODE = {(c.scheme_designator, c.value): name for name, c in LEVEL_CODES.items()}
LATERALITY: Mapping[Side, Code] = MappingProxyType(
    {Side.LEFT: codes.SCT.Left, Side.RIGHT: codes.SCT.Right}
)
_SIDE_BY_CODE = {(c.scheme_designator, c.value): side for side, c in LATERALITY.items()}

RESULT_LENGTH_TOLERANCE_MM = 0.01
NUM_DECIMALS = 2


class SRExportError(VertebroPlanError, ValueError):
    """A plan cannot be written as a DICOM SR (nothing to write, or the wrong CT)."""


Deidentifier = Callable[[Dataset], Dataset]


# ---- writing ---------------------------------------------------------------------------


def write_plan_sr(
    path: str | Path,
    plan: Plan,
    results: Mapping[tuple[str, Side], CheckResult],
    volume: Volume,
    *,
    deidentify_with: Deidentifier | None = None,
    manufacturer: str = "VertebroPlan",
    software_version: str = "0.1.0",
    series_number: int = DEFAULT_SERIES_NUMBER,
    instance_number: int = 1,
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
    deidentify_with
        Called with the finished dataset; what it returns is written.
    manufacturer, software_version
        General Equipment of the SR (and the device observer of the report).
    series_number, instance_number
        Of the new SR series and instance (new UIDs are generated for both).
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
        ``path``.

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
                observer_type=codes.cid270.Device,
                observer_identifying_attributes=DeviceObserverIdentifyingAttributes(
                    uid=DEVICE_UID,
                    name="VertebroPlan",
                    manufacturer_name=manufacturer,
                    model_name="VertebroPlan",
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
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=instance_number,
        manufacturer=manufacturer,
        is_complete=True,
        is_final=False,
        is_verified=False,
        institution_name=volume.patient.institution or None,
        series_description=SERIES_DESCRIPTION,
        manufacturer_model_name="VertebroPlan",
        software_versions=software_version,
        coding_schemes=[_LOCAL_SCHEME_ITEM],
        specific_character_set=CHARACTER_SET,
    )
    if not volume.source_instances:  # the placeholder only carried patient and study
        del sr.CurrentRequestedProcedureEvidenceSequence
    dataset: Dataset = sr
    if deidentify_with is not None:
        dataset = deidentify_with(sr)
    _save_atomic(dataset, p)
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
    planned_on = plan.frame_of_reference_uid
    if planned_on and planned_on != frame_uid and plan.frame_override is None:
        raise SRExportError(
            f"The plan was made on another CT (Frame of Reference {planned_on}, this CT has "
            f"{frame_uid}): its coordinates would be placed wrongly in this CT's study."
        )
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
        name=codes.SCT.Length,
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
    p: PatientInfo = volume.patient
    base = Dataset()
    base.SpecificCharacterSet = CHARACTER_SET
    base.PatientName = p.name
    base.PatientID = p.patient_id
    base.PatientBirthDate = p.birth_date
    base.PatientSex = p.sex if p.sex in ("M", "F", "O") else ""
    base.StudyInstanceUID = study_uid
    base.StudyDate = p.study_date
    base.StudyTime = p.study_time
    base.AccessionNumber = p.accession_number
    base.ReferringPhysicianName = p.referring_physician
    base.StudyID = p.study_id
    if p.study_description:
        base.StudyDescription = p.study_description
    base.SeriesInstanceUID = volume.series_uid or generate_uid()
    instances = [(i.sop_class_uid, i.sop_instance_uid) for i in volume.source_instances]
    out = []
    for sop_class, sop_instance in instances or [(CTImageStorage, generate_uid())]:
        ds = Dataset()
        ds.update(base)
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = sop_instance
        out.append(ds)
    return out


def _save_atomic(dataset: Dataset, path: Path) -> None:
    """The DICOM file written whole or not at all (`atomic_open`)."""
    with atomic_open(path, "wb") as fh:
        dataset.save_as(fh, enforce_file_format=True)


# ---- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Group:
    """The parts of one measurement group a trajectory is rebuilt from."""

    label: str
    items: tuple[Dataset, ...]


def read_plan_sr(path: str | Path) -> Plan:
    """Rebuild the plan from an SR written by `write_plan_sr`.

    Levels, sides, entry and tip (LPS mm), gauge and note come from each needle's
    measurement group; the CT's study UID from the SR's study, its series UID from the
    SR's evidence references (empty when the CT was not DICOM), its Frame of Reference
    from the needle paths.

    Raises
    ------
    PlanFormatError
        The file is missing, not DICOM, not a Comprehensive 3D SR measurement report, or
        holds no needle path; the message names the file.
    """
    p = Path(path)
    ds = read_whole_dicom(p, PlanFormatError, (Comprehensive3DSRStorage,),
                          "a needle plan (a Comprehensive 3D SR written by VertebroPlan)")
    try:
        return _plan_from_sr(ds)
    except PlanFormatError as exc:
        raise PlanFormatError(f"'{p}': {exc}") from exc
    except (*PARSE_ERRORS, OSError) as exc:
        # pydicom parses lazily: a damaged element fails only when the plan reads it, and
        # then as whatever pydicom raises (OSError "No tag to read …" included)
        raise PlanFormatError(
            f"'{p}' is a Comprehensive 3D SR whose content is not a needle plan or is "
            f"damaged ({parse_problem(exc, detail=True)})."
        ) from exc


def _plan_from_sr(ds: Dataset) -> Plan:
    if not _is(ds, codes.DCM.ImagingMeasurementReport):
        raise PlanFormatError(
            "the SR is not an Imaging Measurement Report (TID 1500), so not a needle plan"
        )
    groups = [
        _Group(_tracking_label(g), tuple(g.get("ContentSequence", ())))
        for container in _children(ds, codes.DCM.ImagingMeasurements)
        for g in _children(container, codes.DCM.MeasurementGroup)
    ]
    needles = [g for g in groups if any(_is_code(i, codes.DCM.Finding, NEEDLE) for i in g.items)]
    if not needles:
        raise PlanFormatError("the SR holds no needle paths, so it is not a needle plan")
    trajectories, frames = [], set()
    for g in needles:
        t, frame_uid = _trajectory(g)
        trajectories.append(t)
        frames.add(frame_uid)
    if len(frames) > 1:
        raise PlanFormatError(
            f"the needle paths lie in {len(frames)} different Frames of Reference"
        )
    try:
        return Plan(
            study_uid=str(ds.get("StudyInstanceUID", "")),
            series_uid=_referenced_series(ds),
            frame_of_reference_uid=frames.pop(),
            trajectories=tuple(trajectories),
        )
    except PlanError as exc:
        raise PlanFormatError(str(exc)) from exc


def _trajectory(g: _Group) -> tuple[Trajectory, str]:
    site = _only(g, [i for i in g.items if _is(i, codes.SCT.FindingSite)], "finding site")
    level = _LEVEL_BY_CODE.get(_code_key(site.ConceptCodeSequence[0]))
    if level is None:
        meaning = site.ConceptCodeSequence[0].get("CodeMeaning", "?")
        raise PlanFormatError(f"{g.label}: '{meaning}' is not a vertebral level (C1–S1)")
    lat = _only(g, list(_children(site, codes.SCT.Laterality)), "laterality")
    side = _SIDE_BY_CODE.get(_code_key(lat.ConceptCodeSequence[0]))
    if side is None:
        raise PlanFormatError(f"{g.label}: laterality must be Left or Right")
    paths = [
        s
        for item in g.items
        for s in _walk(item)
        if s.get("ValueType") == "SCOORD3D" and s.get("GraphicType") == "POLYLINE"
    ]
    path = _only(g, paths, "needle path (SCOORD3D POLYLINE)")
    points = np.asarray(path.GraphicData, dtype=np.float64).reshape(-1, 3)
    if len(points) < 2:
        raise PlanFormatError(f"{g.label}: the needle path has {len(points)} point(s), needs 2")
    gauge_texts = [i.TextValue for i in g.items if _is(i, NEEDLE_GAUGE)]
    notes = [i.TextValue for i in g.items if _is(i, COMMENT) and i.get("ValueType") == "TEXT"]
    try:
        name = gauge(gauge_texts[0]).name if gauge_texts else DEFAULT_GAUGE
        t = Trajectory(
            level,
            side,
            points[0],
            points[-1],
            name,
            note=notes[0] if notes else "",
        )
    except PlanError as exc:
        raise PlanFormatError(f"{g.label}: {exc}") from exc
    return t, str(path.ReferencedFrameOfReferenceUID)


def _referenced_series(ds: Dataset) -> str:
    """The series the SR's evidence references (the CT), or "" when there is none."""
    for seq in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
        for study in ds.get(seq, ()):
            for series in study.get("ReferencedSeriesSequence", ()):
                return str(series.SeriesInstanceUID)
    return ""


def _code_key(item: Dataset) -> tuple[str, str]:
    return (str(item.CodingSchemeDesignator), str(item.CodeValue))


def _is(item: Dataset, name: Code) -> bool:
    """Whether a content item's concept name is ``name`` (scheme and value compared)."""
    seq = item.get("ConceptNameCodeSequence")
    return bool(seq) and _code_key(seq[0]) == (name.scheme_designator, name.value)


def _is_code(item: Dataset, name: Code, value: Code) -> bool:
    seq = item.get("ConceptCodeSequence")
    return (
        _is(item, name)
        and bool(seq)
        and _code_key(seq[0]) == (value.scheme_designator, value.value)
    )


def _children(item: Dataset, name: Code) -> Iterator[Dataset]:
    return (c for c in item.get("ContentSequence", ()) if _is(c, name))


def _walk(item: Dataset) -> Iterator[Dataset]:
    yield item
    for child in item.get("ContentSequence", ()):
        yield from _walk(child)


def _tracking_label(group: Dataset) -> str:
    ids = [c.TextValue for c in _children(group, codes.DCM.TrackingIdentifier)]
    return str(ids[0]) if ids else "a measurement group"


def _only(g: _Group, found: list[Any], what: str) -> Any:
    if len(found) != 1:
        raise PlanFormatError(f"{g.label}: expected one {what}, found {len(found)}")
    return found[0]


__all__ = [
    "DISCLAIMER",
    "LATERALITY",
    "LEVEL_CODES",
    "LOCAL_SCHEME",
    "SRExportError",
    "read_plan_sr",
    "write_plan_sr",
]
