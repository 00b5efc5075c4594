"""The DICOM coded concepts VertebroPlan writes and reads, defined once.

Why one vocabulary: the SR of the plan and the SEG of the anatomy name the same things (a
vertebra, the patient's side, a needle), and their readers recognise what the writers wrote
by the same codes. Defining each code here keeps a vertebra written by the SEG and looked up
by the SR reader the very same concept.

Sources: the vertebrae C1–L5 are those of DICOM PS3.16 CID 7603 "Vertebra" (SNOMED CT, as
pydicom's code dictionary lists them); S1, absent from CID 7603, is SNOMED CT 65985001
"Structure of first sacral vertebra". Laterality, Needle, Length, Finding Site and the
segment categories are SNOMED CT codes used by DICOM; concepts no standard names (medial
angle, canal clearance, …) use the local coding scheme ``99VPLAN``, which a document using
them declares in its Coding Scheme Identification Sequence (`LOCAL_SCHEME_ITEM`), as DICOM
requires for private schemes.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from planning.plan import LEVEL_NAMES, Side

CodeKey = tuple[str, str]  # (coding scheme designator, code value): how codes are compared

LOCAL_SCHEME = "99VPLAN"
LOCAL_SCHEME_ITEM = CodingSchemeIdentificationItem(
    designator=LOCAL_SCHEME,
    name="VertebroPlan local codes",
    responsible_organization="VertebroPlan",
)


def _local(value: str, meaning: str) -> Code:
    return Code(value, LOCAL_SCHEME, meaning)


# ---- anatomy and side (SR finding sites, SEG segment types and regions) -----------------

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
LATERALITY: Mapping[Side, Code] = MappingProxyType(
    {Side.LEFT: codes.SCT.Left, Side.RIGHT: codes.SCT.Right}
)
ANATOMICAL_STRUCTURE = codes.SCT.AnatomicalStructure  # CID 7150
PHYSICAL_OBJECT = codes.SCT.PhysicalObject  # CID 7150
SPINAL_CANAL = codes.SCT.VertebralCanal  # 61853006 "Vertebral canal" (CID 8134)
SPINAL_CORD = codes.SCT.SpinalCord  # 2748008, CID 7192: TotalSegmentator's "spinal_cord"
NEEDLE = codes.SCT.Needle  # 79068005, CID 7193
ALGORITHM_FAMILY = codes.cid7162.MorphologicalOperations  # of the SEG's automatic segments

# ---- the SR's structure (TID 1500 / 1501) -------------------------------------------------

IMAGING_MEASUREMENT_REPORT = codes.DCM.ImagingMeasurementReport  # 126000, TID 1500 root
IMAGING_MEASUREMENTS = codes.DCM.ImagingMeasurements  # 126010
MEASUREMENT_GROUP = codes.DCM.MeasurementGroup  # 125007, TID 1501
TRACKING_IDENTIFIER = codes.DCM.TrackingIdentifier
FINDING = codes.DCM.Finding
FINDING_SITE = codes.SCT.FindingSite
LATERALITY_CONCEPT = codes.SCT.Laterality  # the concept name of a finding site's side
OBSERVER_DEVICE = codes.cid270.Device
QUALITATIVE_EVALUATIONS = Code("C0034375", "UMLS", "Qualitative Evaluations")  # TID 1500
PROCEDURE_REPORTED = codes.LN.CTUnspecifiedBodyRegion  # CID 100: the plan measures a CT
LENGTH = codes.SCT.Length  # 410668003
NEEDLE_GAUGE = codes.DCM.NeedleGauge
COMMENT = codes.DCM.Comment
MM = codes.UCUM.Millimeter
DEGREE = codes.UCUM.Degree
ML = Code("ml", "UCUM", "milliliter")
PERCENT = codes.UCUM.Percent
NO_UNITS = codes.UCUM.NoUnits

# ---- one needle's measurements and findings (the SR's needle groups) ---------------------

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

# ---- C-arm working views: DICOM's own positioner angles (patient-referenced, PS3.3 C.8.7.5)

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

# ---- the level assessment (planning.assessment): a group per level ------------------------

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


# ---- looking codes up in a dataset --------------------------------------------------------


def key_of(code: Code) -> CodeKey:
    """How a code is compared: scheme and value (the meaning is free text)."""
    return (code.scheme_designator, code.value)


def code_key(item: Dataset) -> CodeKey:
    """The `key_of` a code sequence item read from a file."""
    return (str(item.CodingSchemeDesignator), str(item.CodeValue))


LEVEL_BY_CODE: Mapping[CodeKey, str] = MappingProxyType(
    {key_of(c): name for name, c in LEVEL_CODES.items()})
SIDE_BY_CODE: Mapping[CodeKey, Side] = MappingProxyType(
    {key_of(c): side for side, c in LATERALITY.items()})
