"""DICOM PS3.15 Annex E: what the Basic Profile does to each attribute, and its options.

Table E.1-1 gives each attribute an action: **D** replace with a dummy value,
**Z** replace with an empty value (or a dummy), **X** remove, **K** keep,
**C** clean (keep what is not identifying), **U** replace a UID by another,
consistently. Where the table allows a choice (X/Z, X/D, Z/D, X/Z/D) the
stronger action that keeps the object valid is written here: Z for
attributes an IOD requires present (Type 2), X otherwise.

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

# The Basic Profile (Table E.1-1), by keyword. Attributes not named here and not
# private are kept: they describe the image, not the person.
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

_PATIENT_CHARACTERISTICS = (
    "PatientSex",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "EthnicGroup",
    "SmokingStatus",
    "PregnancyStatus",
    "PatientSexNeutered",
    "Allergies",
    "MedicalAlerts",
    "AdditionalPatientHistory",
)
_DEVICE_IDENTITY = (
    "DeviceSerialNumber",
    "StationName",
    "PlateID",
    "DetectorID",
    "GantryID",
    "CassetteID",
    "GeneratorID",
    "DeviceDescription",
    "DeviceUID",
    "PerformedStationName",
    "PerformedStationAETitle",
    "ScheduledStationName",
    "ScheduledStationAETitle",
)
_DESCRIPTORS = (
    "StudyDescription",
    "SeriesDescription",
    "ImageComments",
    "DerivationDescription",
    "ProtocolName",
    "AcquisitionComments",
    "RequestedProcedureDescription",
    "PerformedProcedureStepDescription",
    "ScheduledProcedureStepDescription",
)
_DATE_VRS = frozenset({"DA", "DT", "TM"})


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
        """The action for a public attribute; unnamed ones by VR (see the module's docstring)."""
        action = BASIC.get(keyword) or _BY_VR.get(vr, "K")
        if action == "K":
            return action
        if self.has("retain-uids") and action == "U":
            return "K"
        if self.has("retain-dates-modified") and vr in _DATE_VRS and keyword != "PatientBirthDate":
            return "C"  # shifted by the patient's offset
        if self.has("retain-patient-characteristics") and keyword in _PATIENT_CHARACTERISTICS:
            return "K"
        if self.has("retain-device-identity") and keyword in _DEVICE_IDENTITY:
            return "K"
        if self.has("clean-descriptors") and keyword in _DESCRIPTORS:
            return "C"  # identifier values blanked out of the text
        return action
