"""DICOM PS3.15 Annex E: what the Basic Profile does to each attribute, and its options.

Table E.1-1 (all of it, transcribed in :mod:`worker.imaging.annex_e`) gives
each attribute an action: **D** replace with a dummy value,
**Z** replace with an empty value (or a dummy), **X** remove, **K** keep,
**C** clean (keep what is not identifying), **U** replace a UID by another,
consistently. Where the table allows a choice (X/Z, X/D, Z/D, X/Z/D),
:func:`resolved` removes an attribute no standard IOD holds and keeps one a
standard IOD holds present (emptied, or a dummy); ``BASIC`` records the
choices made here instead, where Sieve is stricter than the table.

The options of Table E.1-1 are composable profiles that change those actions:
each is a column of the table, applied here on top of the Basic Profile in
the order given. :meth:`Profile.action` returns the action for an attribute
under a list of options. Private attributes, overlays and curves are removed;
under Retain Safe Private (113111) the private attributes an admin listed as
safe (``SIEVE_DEID__SAFE_PRIVATE``, by group, creator and element) are kept,
and none other. An attribute the table does not name is judged by its VR: dates
and times removed (shifted under modified dates), person names emptied, UIDs
replaced (registered class and syntax UIDs kept), free text (LT, ST, UT)
removed; other values (codes, numbers, short strings) are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel

from worker.imaging.annex_e import TABLE_E1_1, Row

if TYPE_CHECKING:
    import pydicom

# (code value, meaning) of each option in CID 7050, as DeidentificationMethodCodeSequence
# records them; the key is what `--profile` takes.
OPTIONS: dict[str, tuple[str, str]] = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    "clean-pixel": ("113101", "Clean Pixel Data Option"),
    "clean-descriptors": ("113105", "Clean Descriptors Option"),
    "retain-dates-modified": (
        "113107",
        "Retain Longitudinal Temporal Information Modified Dates Option",
    ),
    "retain-patient-characteristics": ("113108", "Retain Patient Characteristics Option"),
    "retain-device-identity": ("113109", "Retain Device Identity Option"),
    "retain-uids": ("113110", "Retain UIDs Option"),
    "retain-safe-private": ("113111", "Retain Safe Private Option"),
}

# Choices made here, over the table's own (worker/imaging/annex_e.py, all of Table
# E.1-1): where it offers a choice, or where Sieve is stricter (the patient's name
# becomes a pseudonym, not empty; report trees and order numbers are removed).
BASIC: dict[str, str] = {
    # --- UIDs: replaced consistently (U) -------------------------------------
    **dict.fromkeys(
        (
            "StudyInstanceUID",
            "SeriesInstanceUID",
            "SOPInstanceUID",
            "MediaStorageSOPInstanceUID",
            "FrameOfReferenceUID",
            "SynchronizationFrameOfReferenceUID",
            "ReferencedSOPInstanceUID",
            "ReferencedFrameOfReferenceUID",
            "RelatedFrameOfReferenceUID",
            "DimensionOrganizationUID",
            "ConcatenationUID",
            "IrradiationEventUID",
            "CreatorVersionUID",
            "DeviceUID",
            "FiducialUID",
            "InstanceCreatorUID",
            "StorageMediaFileSetUID",
            "TargetUID",
            "TemplateExtensionCreatorUID",
            "TemplateExtensionOrganizationUID",
            "TransactionUID",
            "UID",
            "ReferencedGeneralPurposeScheduledProcedureStepTransactionUID",
        ),
        "U",
    ),
    # --- the patient -----------------------------------------------------------
    "PatientName": "D",  # a consistent pseudonym, so the patient's studies stay together
    "PatientID": "D",
    "IssuerOfPatientID": "X",
    "PatientBirthDate": "Z",
    "PatientBirthTime": "X",
    "PatientSex": "Z",
    "PatientAge": "X",
    "PatientSize": "X",
    "PatientWeight": "X",
    "PatientAddress": "X",
    "PatientTelephoneNumbers": "X",
    "PatientMotherBirthName": "X",
    "PatientBirthName": "X",
    "OtherPatientIDs": "X",
    "OtherPatientNames": "X",
    "OtherPatientIDsSequence": "X",
    "ReferencedPatientSequence": "X",
    "ReferencedPatientPhotoSequence": "X",
    "PatientSexNeutered": "X",
    "MilitaryRank": "X",
    "BranchOfService": "X",
    "EthnicGroup": "X",
    "Occupation": "X",
    "PatientReligiousPreference": "X",
    "CountryOfResidence": "X",
    "RegionOfResidence": "X",
    "PatientInsurancePlanCodeSequence": "X",
    "MedicalRecordLocator": "X",
    "ResponsiblePerson": "X",
    "ResponsibleOrganization": "X",
    "AdditionalPatientHistory": "X",
    "PatientComments": "X",
    "MedicalAlerts": "X",
    "Allergies": "X",
    "PregnancyStatus": "X",
    "SmokingStatus": "X",
    "LastMenstrualDate": "X",
    "PatientState": "X",
    "CurrentPatientLocation": "X",
    "PatientInstitutionResidence": "X",
    "AdmittingDiagnosesDescription": "X",
    "DischargeDiagnosisDescription": "X",
    "AdmissionID": "X",
    "IssuerOfAdmissionID": "X",
    "ServiceEpisodeID": "X",
    # --- the order and the visit ----------------------------------------------
    "AccessionNumber": "Z",
    "IssuerOfAccessionNumberSequence": "X",
    "StudyID": "Z",
    "RequestedProcedureID": "X",
    "ScheduledProcedureStepID": "X",
    "PerformedProcedureStepID": "X",
    "FillerOrderNumberImagingServiceRequest": "X",
    "PlacerOrderNumberImagingServiceRequest": "X",
    "RequestAttributesSequence": "X",
    "ReasonForStudy": "X",
    "ReasonForTheRequestedProcedure": "X",
    "RequestedProcedureDescription": "X",
    "RequestedProcedureComments": "X",
    "ImagingServiceRequestComments": "X",
    "ScheduledProcedureStepDescription": "X",
    "PerformedProcedureStepDescription": "X",
    "StudyComments": "X",
    "ReferencedStudySequence": "X",
    "ReferencedPerformedProcedureStepSequence": "X",
    # --- free-text descriptors (C under Clean Descriptors) ------------------------
    "StudyDescription": "X",
    "SeriesDescription": "X",
    "ImageComments": "X",
    "DerivationDescription": "X",
    "ProtocolName": "X",
    "AcquisitionComments": "X",
    "ContrastBolusAgent": "Z",
    "BodyPartExamined": "K",
    # --- staff -----------------------------------------------------------------
    "ReferringPhysicianName": "Z",
    "ReferringPhysicianAddress": "X",
    "ReferringPhysicianTelephoneNumbers": "X",
    "ReferringPhysicianIdentificationSequence": "X",
    "PhysiciansOfRecord": "X",
    "PhysiciansOfRecordIdentificationSequence": "X",
    "PerformingPhysicianName": "X",
    "PerformingPhysicianIdentificationSequence": "X",
    "NameOfPhysiciansReadingStudy": "X",
    "PhysiciansReadingStudyIdentificationSequence": "X",
    "OperatorsName": "X",
    "OperatorIdentificationSequence": "X",
    "RequestingPhysician": "X",
    "RequestingService": "X",
    "ScheduledPerformingPhysicianName": "X",
    "ContentCreatorName": "Z",
    "VerifyingObserverName": "D",
    "VerifyingOrganization": "X",
    "PersonName": "D",
    "PersonAddress": "X",
    "PersonTelephoneNumbers": "X",
    "OrderEnteredBy": "X",
    "OrderEntererLocation": "X",
    "OrderCallbackPhoneNumber": "X",
    "InterpretationRecorder": "X",
    "InterpretationTranscriber": "X",
    "InterpretationAuthor": "X",
    "DistributionName": "X",
    "DistributionAddress": "X",
    "ReviewerName": "X",
    # --- the institution and its equipment ----------------------------------------
    "InstitutionName": "X",
    "InstitutionAddress": "X",
    "InstitutionalDepartmentName": "X",
    "InstitutionCodeSequence": "X",
    "StationName": "X",
    "PerformedStationName": "X",
    "PerformedLocation": "X",
    "ScheduledStationName": "X",
    "ScheduledStationAETitle": "X",
    "PerformedStationAETitle": "X",
    "DeviceSerialNumber": "X",
    "PlateID": "X",
    "DetectorID": "X",
    "GantryID": "X",
    "CassetteID": "X",
    "GeneratorID": "X",
    "DeviceDescription": "X",
    "ModifyingDeviceID": "X",
    "SourceManufacturer": "X",
    # --- dates and times: when is who ----------------------------------------------
    "StudyDate": "Z",
    "SeriesDate": "X",
    "AcquisitionDate": "X",
    "ContentDate": "Z",
    "InstanceCreationDate": "X",
    "StudyTime": "Z",
    "SeriesTime": "X",
    "AcquisitionTime": "X",
    "ContentTime": "Z",
    "InstanceCreationTime": "X",
    "AcquisitionDateTime": "X",
    "FrameReferenceDateTime": "X",
    "FrameAcquisitionDateTime": "X",
    "PerformedProcedureStepStartDate": "X",
    "PerformedProcedureStepStartTime": "X",
    "PerformedProcedureStepEndDate": "X",
    "PerformedProcedureStepEndTime": "X",
    "ScheduledProcedureStepStartDate": "X",
    "ScheduledProcedureStepStartTime": "X",
    "TimezoneOffsetFromUTC": "X",
    # --- references that carry the identity of other objects ------------------------
    "SourceImageSequence": "X",
    "ReferencedImageSequence": "X",
    # --- clinical trials: subject and site identify the patient and where they were ----
    "ClinicalTrialSubjectID": "D",
    "ClinicalTrialSubjectReadingID": "D",
    "ClinicalTrialSiteID": "X",
    "ClinicalTrialSiteName": "X",
    "ClinicalTrialSponsorName": "X",
    "ClinicalTrialProtocolName": "X",
    "ClinicalTrialTimePointDescription": "X",
    "ClinicalTrialCoordinatingCenterName": "X",
    "ClinicalTrialSeriesDescription": "X",
    "IssuerOfTheContainerIdentifierSequence": "X",
    "PatientTransportArrangements": "X",
    "SpecialNeeds": "X",
    "VisitComments": "X",
    "ProtocolContextSequence": "X",
    "Arbitrary": "X",
    "TextComments": "X",
    "TextString": "X",
    "GraphicAnnotationSequence": "X",
    "IconImageSequence": "X",
    "DigitalSignaturesSequence": "X",
    "OriginalAttributesSequence": "X",
    "ModifiedAttributesSequence": "X",
    # --- report content: an SR's or KO's tree holds names and findings as free text ----
    "ContentSequence": "X",
    "TextValue": "X",
    "ContentCreatorIdentificationCodeSequence": "X",
}
# What an attribute the table does not name gets, by its VR.
# Free text (LT, ST, UT) is where people write names: removed unless the table keeps it.
_BY_VR = {"DA": "X", "DT": "X", "TM": "X", "PN": "Z", "UI": "U", "LT": "X", "ST": "X", "UT": "X"}

_DATE_VRS = frozenset({"DA", "DT", "TM"})


def resolved(row: Row) -> str:
    """One action for a row whose Basic Profile action is a choice (X/Z, X/D, Z/D, X/Z/D, …).

    An attribute no standard IOD holds is removed (X); one a standard IOD holds
    may be required there (Type 1 or 2), so it stays present: emptied (Z) where
    the table allows it, a dummy (D) otherwise.
    """
    choices = row.basic.rstrip("*").split("/")
    if len(choices) == 1:
        return choices[0]
    if not row.in_standard_iod and "X" in choices:
        return "X"
    for preferred in ("Z", "D", "U"):
        if preferred in choices:
            return preferred
    return choices[0]


@dataclass(frozen=True)
class Profile:
    """The Basic Profile with its options, as ``--profile basic,clean-pixel,…`` names them."""

    options: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Profile:
        """From a comma-separated list; ``basic`` is always applied (and may be left out)."""
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in OPTIONS]
        if unknown:
            raise ValueError(
                f"unknown de-identification option(s) {unknown}; known: {', '.join(OPTIONS)}"
            )
        return cls(tuple(dict.fromkeys(["basic", *names])))

    def has(self, option: str) -> bool:
        return option in self.options

    def codes(self) -> list[tuple[str, str]]:
        """(code value, meaning) for DeidentificationMethodCodeSequence, in order."""
        return [OPTIONS[name] for name in self.options]

    def action(self, keyword: str, vr: str) -> str:
        """The action for a public attribute; unnamed ones by VR (see the module's docstring).

        An option changes an attribute where its column of Table E.1-1 says so;
        when several do, keeping (K) wins over cleaning (C).
        """
        row = TABLE_E1_1.get(keyword)
        action = BASIC.get(keyword) or (resolved(row) if row else _BY_VR.get(vr, "K"))
        if action == "K":
            return action
        if row is None:
            if self.has("retain-uids") and action == "U":
                return "K"
            if self.has("retain-dates-modified") and vr in _DATE_VRS:
                return "C"  # shifted by the patient's offset
            return action
        changed = {row.options[name] for name in self.options if name in row.options}
        if "K" in changed:
            return "K"
        return "C" if "C" in changed else action


class RegionRule(BaseModel):
    """Where a known device burns text into its images: blanked on every frame it matches.

    Like CTP's pixel anonymiser script: a rule names what it applies to (each
    condition optional; text compared case-insensitively as a substring) and
    the boxes to blank, in pixels (left, top, right, bottom; right and bottom
    exclusive). Configured as ``SIEVE_DEID__PIXEL_REGIONS``.
    """

    name: str
    modality: str | None = None
    manufacturer: str | None = None
    model: str | None = None  # ManufacturerModelName
    rows: int | None = None
    columns: int | None = None
    boxes: list[tuple[int, int, int, int]]

    def matches(self, header: pydicom.Dataset) -> bool:
        def has(keyword: str, wanted: str | None) -> bool:
            return wanted is None or wanted.lower() in str(header.get(keyword, "") or "").lower()

        return (
            (self.modality is None or str(header.get("Modality", "")) == self.modality)
            and has("Manufacturer", self.manufacturer)
            and has("ManufacturerModelName", self.model)
            and (self.rows is None or int(header.get("Rows", 0) or 0) == self.rows)
            and (self.columns is None or int(header.get("Columns", 0) or 0) == self.columns)
        )
