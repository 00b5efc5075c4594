"""De-identification of the DICOM objects VertebroPlan writes (plan SR, Encapsulated PDF).

Implements the Basic Application Level Confidentiality Profile of DICOM PS3.15 Annex E
(Table E.1-1, 2024 edition) for the attributes these objects can carry, with two options:

* **Clean Structured Content** (always, for SR): the SR content tree is kept, because the
  plan *is* the content, and cleaned with the same rules as the header: person names
  replaced, dates shifted or replaced by a dummy, every instance UID remapped. TEXT items
  are kept: VertebroPlan writes them itself (levels, sides, check results), not from
  patient data.
* **Retain Longitudinal Temporal Information with Modified Dates** (``date_shift_days``):
  dates are moved by a fixed number of days instead of removed, so the order and spacing
  of a patient's plans survive. Times are kept. The birth date is removed either way.
* **Retain Patient Characteristics** (``retain_patient_characteristics``): keeps sex, age,
  size and weight. Off by default: the Basic profile empties Patient's Sex (action Z);
  a vertebroplasty plan does not need it.

Identity is replaced, not just removed, where the object would otherwise become invalid
or unusable: the Patient's Name becomes ``"ANONYMOUS^"`` (family name ANONYMOUS), the
Patient ID a pseudonym (a keyed hash of the original ID, so the same patient gets the same
pseudonym from the same key, while without the key nobody can recompute it from a guessed
ID).

UIDs are remapped consistently within one `Deidentifier`: the same input UID gives the same
output UID in every object it processes, so an SR and a PDF de-identified by the same
instance stay in one study and one frame of reference, and the SR's references still point
at the right objects. Standard UIDs (SOP classes, transfer syntaxes, coding schemes:
everything under ``1.2.840.10008.``) are kept.

The PDF inside an Encapsulated PDF cannot be cleaned here (the profile's action for
Encapsulated Document is D, replace): de-identify the report *before* it is rendered (see
`Deidentifier.patient_info`) and say so with ``document_content_deidentified=True``;
otherwise an object carrying a document is refused rather than sent with a name inside.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable
from enum import Enum
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from planning.errors import VertebroPlanError
from planning.volume import PatientInfo

ANONYMOUS = "ANONYMOUS"
ANONYMOUS_PERSON = "ANONYMOUS^"
"""A dummy Person Name: family name ANONYMOUS (the caret keeps it in the current PN form)."""
DUMMY_DATE = "19000101"
DUMMY_TIME = "000000"
STANDARD_UID_ROOT = "1.2.840.10008."


class DeidentificationError(VertebroPlanError, ValueError):
    """An object cannot be de-identified safely (e.g. it carries a document we cannot read)."""


class Action(Enum):
    """Table E.1-1a action codes (combined codes resolved per attribute, see `_resolve`)."""

    X = "remove"
    Z = "empty"
    D = "dummy"
    K = "keep"
    U = "new UID"
    XZ = "remove, or empty if type 2"
    XD = "remove, or dummy if type 1"
    ZD = "empty, or dummy if type 1"
    XZD = "remove, or empty if type 2, or dummy if type 1"


A = Action
# PS3.15 Table E.1-1 (2024b), Basic Profile column, for the attributes an SR, an Encapsulated
# PDF or their file meta can carry. UIDs and person names not listed are handled by VR below.
PROFILE: dict[str, Action] = {
    # patient
    "PatientName": A.D,  # Z in the table, which allows a dummy: "ANONYMOUS" reads clearer
    "PatientID": A.ZD,
    "IssuerOfPatientID": A.X,
    "IssuerOfPatientIDQualifiersSequence": A.X,
    "TypeOfPatientID": A.X,
    "PatientBirthDate": A.Z,
    "PatientBirthTime": A.X,
    "PatientSex": A.Z,
    "PatientAge": A.X,
    "PatientSize": A.X,
    "PatientWeight": A.X,
    "PatientAddress": A.X,
    "PatientTelephoneNumbers": A.X,
    "PatientTelecomInformation": A.X,
    "PatientMotherBirthName": A.X,
    "PatientBirthName": A.X,
    "PatientComments": A.X,
    "PatientState": A.X,
    "PatientReligiousPreference": A.X,
    "PatientInsurancePlanCodeSequence": A.X,
    "PatientPrimaryLanguageCodeSequence": A.X,
    "PatientSexNeutered": A.XZ,
    "OtherPatientIDs": A.X,
    "OtherPatientIDsSequence": A.X,
    "OtherPatientNames": A.X,
    "EthnicGroup": A.X,
    "Occupation": A.X,
    "MedicalAlerts": A.X,
    "Allergies": A.X,
    "AdditionalPatientHistory": A.X,
    "PregnancyStatus": A.X,
    "SmokingStatus": A.X,
    "LastMenstrualDate": A.X,
    "MilitaryRank": A.X,
    "BranchOfService": A.X,
    "MedicalRecordLocator": A.X,
    "CountryOfResidence": A.X,
    "RegionOfResidence": A.X,
    "ResponsiblePerson": A.X,
    "ResponsibleOrganization": A.X,
    "ReferencedPatientSequence": A.X,
    "ReferencedPatientPhotoSequence": A.X,
    "ClinicalTrialSubjectID": A.D,
    "ClinicalTrialSubjectReadingID": A.D,
    "ClinicalTrialSponsorName": A.D,
    "ClinicalTrialProtocolID": A.D,
    "ClinicalTrialSiteID": A.Z,
    "ClinicalTrialSiteName": A.Z,
    # study, visit, request
    "StudyDate": A.Z,
    "StudyTime": A.Z,
    "AccessionNumber": A.Z,
    "IssuerOfAccessionNumberSequence": A.X,
    "ReferringPhysicianName": A.Z,
    "ReferringPhysicianAddress": A.X,
    "ReferringPhysicianTelephoneNumbers": A.X,
    "ReferringPhysicianIdentificationSequence": A.X,
    "ConsultingPhysicianName": A.Z,
    "ConsultingPhysicianIdentificationSequence": A.X,
    "StudyID": A.Z,
    "StudyDescription": A.X,
    "StudyComments": A.X,
    "ReferencedStudySequence": A.XZ,
    "PhysiciansOfRecord": A.X,
    "PhysiciansOfRecordIdentificationSequence": A.X,
    "NameOfPhysiciansReadingStudy": A.X,
    "PhysiciansReadingStudyIdentificationSequence": A.X,
    "RequestingPhysician": A.X,
    "RequestingService": A.X,
    "RequestAttributesSequence": A.X,
    "RequestedProcedureDescription": A.XZ,
    "RequestedProcedureID": A.X,
    "ReasonForStudy": A.X,
    "ReasonForTheRequestedProcedure": A.X,
    "AdmittingDiagnosesDescription": A.X,
    "AdmittingDiagnosesCodeSequence": A.X,
    "AdmissionID": A.X,
    "IssuerOfAdmissionIDSequence": A.X,
    "CurrentPatientLocation": A.X,
    "PlacerOrderNumberImagingServiceRequest": A.Z,
    "FillerOrderNumberImagingServiceRequest": A.Z,
    "OrderEnteredBy": A.X,
    "OrderEntererLocation": A.X,
    "OrderCallbackPhoneNumber": A.X,
    "ImagingServiceRequestComments": A.X,
    # series, equipment, instance
    "SeriesDate": A.XD,
    "SeriesTime": A.XD,
    "SeriesDescription": A.X,
    "InstanceCreationDate": A.XD,
    "InstanceCreationTime": A.XZD,
    "ContentDate": A.ZD,
    "ContentTime": A.ZD,
    "AcquisitionDate": A.XZ,
    "AcquisitionTime": A.XZ,
    "AcquisitionDateTime": A.XZD,
    "TimezoneOffsetFromUTC": A.X,
    "InstitutionName": A.XZD,
    "InstitutionAddress": A.X,
    "InstitutionCodeSequence": A.XZD,
    "InstitutionalDepartmentName": A.X,
    "InstitutionalDepartmentTypeCodeSequence": A.X,
    "StationName": A.XZD,
    "StationAETitle": A.X,
    "DeviceSerialNumber": A.XZD,
    "DeviceUID": A.U,
    "OperatorsName": A.XZD,
    "OperatorIdentificationSequence": A.XD,
    "PerformingPhysicianName": A.X,
    "PerformingPhysicianIdentificationSequence": A.X,
    "ProtocolName": A.XD,
    "DerivationDescription": A.X,
    "ImageComments": A.X,
    "IdentifyingComments": A.X,
    "ReferencedPerformedProcedureStepSequence": A.XZD,
    "PerformedProcedureStepID": A.X,
    "PerformedProcedureStepDescription": A.X,
    "PerformedProcedureStepStartDate": A.X,
    "PerformedProcedureStepStartTime": A.X,
    "PerformedProcedureStepEndDate": A.X,
    "PerformedProcedureStepEndTime": A.X,
    "PerformedStationAETitle": A.X,
    "PerformedStationName": A.X,
    "PerformedLocation": A.X,
    "CommentsOnThePerformedProcedureStep": A.X,
    "ScheduledProcedureStepDescription": A.X,
    "ScheduledProcedureStepID": A.X,
    "RetrieveAETitle": A.X,
    "ContributionDateTime": A.X,  # Contributing Equipment (highdicom adds one)
    "ContributionDescription": A.X,
    "IconImageSequence": A.X,
    "DigitalSignaturesSequence": A.X,
    "OriginalAttributesSequence": A.X,
    "ModifiedAttributesSequence": A.X,
    "DataSetTrailingPadding": A.X,
    # structured reporting (kept under the Clean Structured Content option: cleaned inside)
    "ContentSequence": A.K,
    "VerifyingObserverSequence": A.D,
    "VerifyingObserverName": A.D,
    "VerifyingOrganization": A.D,
    "VerificationDateTime": A.D,
    "VerifyingObserverIdentificationCodeSequence": A.Z,
    "AuthorObserverSequence": A.X,
    "ParticipantSequence": A.X,
    "CustodialOrganizationSequence": A.X,
    "PersonName": A.D,
    "PersonIdentificationCodeSequence": A.X,  # D in the table; its codes identify the person
    "PersonAddress": A.X,
    "PersonTelephoneNumbers": A.X,
    "Date": A.D,
    "Time": A.D,
    "DateTime": A.D,
    "ObservationDateTime": A.XD,
    "ReferencedDateTime": A.D,
    "TemplateVersion": A.X,
    "TemplateLocalVersion": A.X,
    "ContentCreatorName": A.ZD,
    "ContentCreatorIdentificationCodeSequence": A.X,
    # D in the table; kept only when the caller vouches for it (see the module docstring)
    "EncapsulatedDocument": A.K,
    "HL7DocumentEffectiveTime": A.X,
}

TYPE1: frozenset[str] = frozenset(
    {
        # SR Document General Module: Content Date/Time are type 1 there
        "ContentDate",
        "ContentTime",
        "VerifyingObserverName",
        "VerifyingOrganization",
        "VerificationDateTime",
        "PatientID",
        "PersonName",
        "Date",
        "Time",
        "DateTime",
    }
)
"""Attributes that must keep a value for our IODs (SR, Encapsulated PDF) to stay valid."""

TYPE2: frozenset[str] = frozenset(
    {
        "AcquisitionDateTime",  # Encapsulated Document Module
        "ReferencedPerformedProcedureStepSequence",  # SR Document General Module
        "ContentCreatorName",
    }
)
"""Attributes that must be present (maybe empty) for our IODs to stay valid."""

KEEP_UIDS: frozenset[str] = frozenset(
    {
        "SOPClassUID",
        "ReferencedSOPClassUID",
        "MediaStorageSOPClassUID",
        "ReferencedSOPClassUIDInFile",
        "TransferSyntaxUID",
        "ReferencedTransferSyntaxUIDInFile",
        "ImplementationClassUID",
        "CodingSchemeUID",
        "ContextUID",
        "MappingResourceUID",
        "ContextGroupExtensionCreatorUID",
        "PrivateInformationCreatorUID",
        "RelatedGeneralSOPClassUID",
        "OriginalSpecializedSOPClassUID",
    }
)
"""UI attributes that name a class, syntax or coding resource, not an instance: kept."""

_PATIENT_CHARACTERISTICS = frozenset(
    {"PatientSex", "PatientAge", "PatientSize", "PatientWeight", "PatientSexNeutered"}
)
_DEID_CODES = {
    "113100": "Basic Application Confidentiality Profile",
    "113104": "Clean Structured Content Option",
    "113107": "Retain Longitudinal Temporal Information Modified Dates Option",
    "113108": "Retain Patient Characteristics Option",
}


def _is_overlay_or_curve(tag: BaseTag) -> bool:
    group = tag.group
    return 0x5000 <= group <= 0x50FF or (
        0x6000 <= group <= 0x60FF and tag.element in (0x3000, 0x4000)
    )


class Deidentifier:
    """Applies the Basic Application Level Confidentiality Profile; one instance per export.

    Parameters
    ----------
    key
        Secret for the Patient ID pseudonym and the UID mapping. The same key maps the same
        patient and the same UIDs to the same output every time (useful to re-export a
        patient consistently); by default a random key, so only this instance is consistent.
    date_shift_days
        Shift every date by this many days (Retain Longitudinal Temporal Information with
        Modified Dates option). None (default) applies the Basic profile: dates removed,
        emptied or replaced by 1900-01-01 where the object needs one.
    retain_patient_characteristics
        Keep sex, age, size and weight (Retain Patient Characteristics option).
    patient_name
        The replacement Patient's Name.
    document_content_deidentified
        Set to True when the PDF inside an Encapsulated PDF was rendered from de-identified
        data; without it such an object is refused.
    """

    def __init__(
        self,
        *,
        key: bytes | None = None,
        date_shift_days: int | None = None,
        retain_patient_characteristics: bool = False,
        patient_name: str = ANONYMOUS_PERSON,
        document_content_deidentified: bool = False,
    ) -> None:
        if key is not None and len(key) < 16:
            raise DeidentificationError("The de-identification key must be at least 16 bytes")
        self._key = key if key is not None else secrets.token_bytes(32)
        self._shift = None if date_shift_days is None else _dt.timedelta(days=date_shift_days)
        self._retain_characteristics = retain_patient_characteristics
        self._patient_name = patient_name
        self._document_ok = document_content_deidentified
        self._uids: dict[str, str] = {}

    def __repr__(self) -> str:
        return (
            f"Deidentifier(date_shift={self._shift is not None}, "
            f"retain_patient_characteristics={self._retain_characteristics})"
        )

    # ---- values ----------------------------------------------------------------------
    def pseudonym(self, patient_id: str) -> str:
        """The Patient ID to use instead of ``patient_id`` (same key → same pseudonym)."""
        digest = hmac.new(self._key, b"patient:" + patient_id.encode(), hashlib.sha256)
        return "ANON-" + digest.hexdigest()[:16].upper()

    def uid(self, original: str) -> str:
        """The replacement for an instance UID, the same for the same input UID."""
        original = original.strip("\0 ")
        if not original or original.startswith(STANDARD_UID_ROOT):
            return original
        new = self._uids.get(original)
        if new is None:
            # A "2.25." UUID-derived UID: needs no registered root, and the keyed hash
            # gives nothing away about the original UID.
            mac = hmac.new(self._key, b"uid:" + original.encode(), hashlib.sha256).digest()
            new = f"2.25.{uuid.UUID(bytes=mac[:16], version=4).int}"
            self._uids[original] = new
        return new

    @property
    def uid_map(self) -> dict[str, str]:
        """Every UID replaced so far, original → new (keep it private: it re-identifies)."""
        return dict(self._uids)

    def shift_date(self, value: str) -> str:
        """A DA value moved by the date shift; "" without ``date_shift_days`` (removed)."""
        if self._shift is None or not value.strip():
            return ""
        try:
            day = _dt.datetime.strptime(value.strip()[:8], "%Y%m%d").date()
        except ValueError:
            return DUMMY_DATE
        return (day + self._shift).strftime("%Y%m%d")

    def _shift_datetime(self, value: str) -> str:
        value = value.strip()
        if len(value) < 8:
            return DUMMY_DATE
        return self.shift_date(value[:8]) + value[8:]

    def patient_info(self, info: PatientInfo) -> PatientInfo:
        """The patient data to print on a de-identified report, matching the DICOM header.

        Every field is emptied, whatever fields this version of PatientInfo has, then name,
        pseudonym, study date/time (if dates are shifted) and sex (if retained) are set.
        """
        cleared: dict[str, Any] = {
            f.name: "" for f in dataclasses.fields(info) if isinstance(getattr(info, f.name), str)
        }
        cleared["name"] = self._patient_name
        cleared["patient_id"] = self.pseudonym(info.patient_id)
        if self._shift is not None:
            cleared["study_date"] = self.shift_date(info.study_date)
            cleared["study_time"] = info.study_time
        if self._retain_characteristics:
            cleared["sex"] = info.sex
        return dataclasses.replace(info, **cleared)

    # ---- datasets ----------------------------------------------------------------------
    def __call__(self, ds: Dataset) -> Dataset:
        """A de-identified copy of ``ds`` (the original is not changed)."""
        if "EncapsulatedDocument" in ds and not self._document_ok:
            raise DeidentificationError(
                "This DICOM object contains a document (PDF) that may show the patient's "
                "name; it cannot be de-identified afterwards. Create the report from "
                "de-identified patient data, then export it again."
            )
        out = copy.deepcopy(ds)
        self._clean(out, set())
        meta = getattr(out, "file_meta", None)
        if meta is not None and "MediaStorageSOPInstanceUID" in meta:
            meta.MediaStorageSOPInstanceUID = self.uid(str(meta.MediaStorageSOPInstanceUID))
        self._mark(out)
        return out

    def _mark(self, ds: Dataset) -> None:
        codes = ["113100"]
        if "ContentSequence" in ds:
            codes.append("113104")
        if self._shift is not None:
            codes.append("113107")
        if self._retain_characteristics:
            codes.append("113108")
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = [_DEID_CODES[c][:64] for c in codes]
        items = []
        for c in codes:
            item = Dataset()
            item.CodeValue = c
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = _DEID_CODES[c]
            items.append(item)
        ds.DeidentificationMethodCodeSequence = items
        ds.LongitudinalTemporalInformationModified = (
            "MODIFIED" if self._shift is not None else "REMOVED"
        )

    def _clean(self, ds: Dataset, seen: set[int]) -> None:
        """Clean ``ds`` in place. ``seen``: the items already cleaned — an object built by
        a library may put one item object in two sequences (highdicom's SEG does), and
        cleaning it twice would map its UIDs twice, breaking the references."""
        if id(ds) in seen:
            return
        seen.add(id(ds))
        for elem in list(ds):
            tag = elem.tag
            if tag.is_private or _is_overlay_or_curve(tag):
                del ds[tag]
                continue
            action = self._action(elem)
            if action is A.X:
                del ds[tag]
            elif elem.VR == "SQ":
                if action is A.Z:
                    elem.value = Sequence()
                else:  # K, D or U: keep the items, clean inside (D = "cleaned" sequence)
                    for item in elem.value:
                        self._clean(item, seen)
            elif action is A.Z:
                elem.value = elem.empty_value
            elif action is A.D:
                elem.value = self._dummy(elem)
            elif action is A.U:
                elem.value = self._map_uids(elem.value)

    def _action(self, elem: DataElement) -> Action:
        """Resolve the profile's action for this element in our IODs."""
        keyword = elem.keyword
        if self._retain_characteristics and keyword in _PATIENT_CHARACTERISTICS:
            return A.K
        action = PROFILE.get(keyword)
        if action is None:
            if elem.VR == "UI":
                return A.K if keyword in KEEP_UIDS else A.U
            if elem.VR == "PN":
                return A.D if keyword in TYPE1 else A.Z
            return A.K
        if self._shift is not None and elem.VR in ("DA", "DT", "TM") and action is not A.K:
            if keyword in ("PatientBirthDate", "PatientBirthTime", "LastMenstrualDate"):
                return action if action in (A.X, A.Z) else A.Z
            return A.D  # _dummy shifts dates and keeps times
        return _resolve(action, keyword)

    def _dummy(self, elem: DataElement) -> object:
        vr, keyword, value = elem.VR, elem.keyword, elem.value
        if keyword == "PatientID":
            return self.pseudonym(str(value or ""))
        if vr == "DA":
            if self._shift is not None:
                return _map_values(value, self.shift_date)
            return DUMMY_DATE
        if vr == "DT":
            if self._shift is not None:
                return _map_values(value, self._shift_datetime)
            return DUMMY_DATE + DUMMY_TIME
        if vr == "TM":  # whole-day shifts leave times as they are
            return value if self._shift is not None else DUMMY_TIME
        if vr == "PN":
            return self._patient_name if keyword == "PatientName" else ANONYMOUS_PERSON
        if vr == "UI":
            return self._map_uids(value)
        if vr in ("OB", "OW", "UN"):
            return b"\0\0"
        if vr in ("US", "SS", "UL", "SL", "FL", "FD", "IS", "DS", "UV", "SV"):
            return 0
        return ANONYMOUS

    def _map_uids(self, value: object) -> object:
        if value is None or value == "":
            return value
        if isinstance(value, MultiValue | list):
            return [self.uid(str(v)) for v in value]
        return self.uid(str(value))


def _resolve(action: Action, keyword: str) -> Action:
    """Turn a combined action (X/Z, Z/D, ...) into the simplest one that keeps our IODs valid."""
    if action is A.XZ:
        return A.Z if keyword in TYPE2 else A.X
    if action is A.XD:
        return A.D if keyword in TYPE1 else A.X
    if action is A.ZD:
        return A.D if keyword in TYPE1 else A.Z
    if action is A.XZD:
        if keyword in TYPE1:
            return A.D
        return A.Z if keyword in TYPE2 else A.X
    return action


def _map_values(value: object, fn: Callable[[str], str]) -> object:
    if value is None or value == "":
        return value
    if isinstance(value, MultiValue | list):
        return [fn(str(v)) for v in value]
    return fn(str(value))
