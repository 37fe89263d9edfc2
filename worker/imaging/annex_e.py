"""DICOM PS3.15 Table E.1-1, transcribed: every attribute the Basic Profile names.

Each row is the attribute's keyword, its Basic Profile action as the table
writes it (a choice such as ``X/Z`` included), whether a standard composite IOD
holds it, and its action under each option that changes it. The rows were read
from the 2024e edition of the standard (through Innolitics' MIT-licensed
extraction of it, ``standard/confidentiality_profile_attributes.json``) and
keyed by pydicom's dictionary. Not rows here: the repeating groups (curves
``50xx``, overlays ``60xx``) and private attributes (odd groups), which
:mod:`worker.imaging.deid` removes by group. How a choice is resolved, and how
the options combine, is :mod:`worker.imaging.deid_profile`.
"""

from __future__ import annotations

from typing import NamedTuple


class Row(NamedTuple):
    """One attribute of Table E.1-1."""

    basic: str  # D, Z, X, K, C, U, or a choice: X/Z, X/D, Z/D, X/Z/D, X/Z/U*
    in_standard_iod: bool  # used in a standard composite IOD (the table's "Std. Comp. IOD")
    options: dict[str, str]  # option name -> K or C, where the option changes the action


TABLE_E1_1: dict[str, Row] = {
    "AccessionNumber": Row("Z", True, {}),  # (0008,0050)
    "AcquisitionComments": Row("X", False, {"clean-descriptors": "C"}),  # (0018,4000)
    "AcquisitionContextSequence": Row(
        "X/Z", True, {"clean-structured-content": "C"}
    ),  # (0040,0555)
    "AcquisitionDate": Row(
        "X/Z", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0008,0022)
    "AcquisitionDateTime": Row(
        "X/Z/D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0008,002A)
    "AcquisitionDeviceProcessingDescription": Row(
        "X/D", True, {"clean-descriptors": "C"}
    ),  # (0018,1400)
    "AcquisitionFieldOfViewLabel": Row("D", True, {"clean-descriptors": "C"}),  # (0018,11BB)
    "AcquisitionProtocolDescription": Row("X", True, {"clean-descriptors": "C"}),  # (0018,9424)
    "AcquisitionTime": Row(
        "X/Z", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0008,0032)
    "AcquisitionUID": Row("U", True, {"retain-uids": "K"}),  # (0008,0017)
    "ActualHumanPerformersSequence": Row("X", False, {}),  # (0040,4035)
    "AdditionalPatientHistory": Row("X", True, {"clean-descriptors": "C"}),  # (0010,21B0)
    "AddressTrial": Row("X", False, {}),  # (0040,A353)
    "AdmissionID": Row("X", True, {}),  # (0038,0010)
    "AdmittingDate": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0038,0020)
    "AdmittingDiagnosesCodeSequence": Row("X", True, {"clean-descriptors": "C"}),  # (0008,1084)
    "AdmittingDiagnosesDescription": Row("X", True, {"clean-descriptors": "C"}),  # (0008,1080)
    "AdmittingTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0038,0021)
    "AffectedSOPInstanceUID": Row("X", False, {"retain-uids": "K"}),  # (0000,1000)
    "Allergies": Row(
        "X", False, {"clean-descriptors": "C", "retain-patient-characteristics": "C"}
    ),  # (0010,2110)
    "AnnotationGroupDescription": Row("X", True, {"clean-descriptors": "C"}),  # (006A,0006)
    "AnnotationGroupLabel": Row("D", True, {"clean-descriptors": "C"}),  # (006A,0005)
    "AnnotationGroupUID": Row("D", True, {"retain-uids": "K"}),  # (006A,0003)
    "ApprovalStatusDateTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0044,0004)
    "Arbitrary": Row("X", False, {}),  # (4000,0010)
    "AssertionDateTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0044,0104)
    "AssertionExpirationDateTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0044,0105)
    "AttributeModificationDateTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0400,0562)
    "AuthorObserverSequence": Row("X", True, {}),  # (0040,A078)
    "BarcodeValue": Row("X/Z", True, {}),  # (2200,0005)
    "BeamDescription": Row("X", True, {"clean-descriptors": "C"}),  # (300A,00C3)
    "BeamHoldTransitionDateTime": Row(
        "D",
        True,
        {"retain-dates-full": "K", "retain-dates-modified": "C", "retain-device-identity": "K"},
    ),  # (300C,0127)
    "BolusDescription": Row("X", True, {"clean-descriptors": "C"}),  # (300A,00DD)
    "BranchOfService": Row("X", False, {}),  # (0010,1081)
    "CalibrationDate": Row(
        "X",
        False,
        {"retain-dates-full": "K", "retain-dates-modified": "C", "retain-device-identity": "K"},
    ),  # (0014,407E)
    "CalibrationDateTime": Row(
        "Z",
        True,
        {"retain-dates-full": "K", "retain-dates-modified": "C", "retain-device-identity": "K"},
    ),  # (0018,1203)
    "CalibrationTime": Row(
        "X",
        False,
        {"retain-dates-full": "K", "retain-dates-modified": "C", "retain-device-identity": "K"},
    ),  # (0014,407C)
    "CameraOwnerName": Row("X", True, {}),  # (0016,004D)
    "CassetteID": Row("X", True, {"retain-device-identity": "K"}),  # (0018,1007)
    "CertificateOfSigner": Row("D", True, {}),  # (0400,0115)
    "CertifiedTimestamp": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0400,0310)
    "ClinicalTrialCoordinatingCenterName": Row(
        "Z", True, {"retain-institution-identity": "K"}
    ),  # (0012,0060)
    "ClinicalTrialProtocolEthicsCommitteeApprovalNumber": Row("X", True, {}),  # (0012,0082)
    "ClinicalTrialProtocolEthicsCommitteeName": Row(
        "D", True, {"retain-institution-identity": "K"}
    ),  # (0012,0081)
    "ClinicalTrialProtocolID": Row("D", True, {}),  # (0012,0020)
    "ClinicalTrialProtocolName": Row("Z", True, {}),  # (0012,0021)
    "ClinicalTrialSeriesDescription": Row("X", True, {"clean-descriptors": "C"}),  # (0012,0072)
    "ClinicalTrialSeriesID": Row("X", True, {}),  # (0012,0071)
    "ClinicalTrialSiteID": Row("Z", True, {"retain-institution-identity": "K"}),  # (0012,0030)
    "ClinicalTrialSiteName": Row("Z", True, {"retain-institution-identity": "K"}),  # (0012,0031)
    "ClinicalTrialSponsorName": Row("D", True, {}),  # (0012,0010)
    "ClinicalTrialSubjectID": Row("D", True, {}),  # (0012,0040)
    "ClinicalTrialSubjectReadingID": Row("D", True, {}),  # (0012,0042)
    "ClinicalTrialTimePointDescription": Row("X", True, {"clean-descriptors": "C"}),  # (0012,0051)
    "ClinicalTrialTimePointID": Row("Z", True, {}),  # (0012,0050)
    "CommentsOnRadiationDose": Row("X", True, {"clean-descriptors": "C"}),  # (0040,0310)
    "CommentsOnThePerformedProcedureStep": Row(
        "X", True, {"clean-descriptors": "C"}
    ),  # (0040,0280)
    "CompensatorDescription": Row("X", True, {"clean-descriptors": "C"}),  # (300A,02EB)
    "ConcatenationUID": Row("U", True, {"retain-uids": "K"}),  # (0020,9161)
    "ConceptualVolumeCombinationDescription": Row(
        "Z", True, {"clean-descriptors": "C"}
    ),  # (3010,000F)
    "ConceptualVolumeDescription": Row("Z", True, {"clean-descriptors": "C"}),  # (3010,0017)
    "ConceptualVolumeUID": Row("U", True, {"retain-uids": "K"}),  # (3010,0006)
    "ConfidentialityConstraintOnPatientDataDescription": Row("X", False, {}),  # (0040,3001)
    "ConstituentConceptualVolumeUID": Row("U", True, {"retain-uids": "K"}),  # (3010,0013)
    "ConsultingPhysicianIdentificationSequence": Row("X", True, {}),  # (0008,009D)
    "ConsultingPhysicianName": Row("Z", True, {}),  # (0008,009C)
    "ContainerComponentID": Row("X", True, {}),  # (0050,001B)
    "ContainerDescription": Row("X", True, {"clean-descriptors": "C"}),  # (0040,051A)
    "ContainerIdentifier": Row("D", True, {}),  # (0040,0512)
    "ContentCreatorIdentificationCodeSequence": Row("X", True, {}),  # (0070,0086)
    "ContentCreatorName": Row("Z/D", True, {}),  # (0070,0084)
    "ContentDate": Row(
        "Z/D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0008,0023)
    "ContentSequence": Row("D", True, {"clean-structured-content": "C"}),  # (0040,A730)
    "ContentTime": Row(
        "Z/D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0008,0033)
    "ContextGroupLocalVersion": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0008,0107)
    "ContextGroupVersion": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0008,0106)
    "ContrastBolusAgent": Row("Z/D", True, {"clean-descriptors": "C"}),  # (0018,0010)
    "ContrastBolusStartTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,1042)
    "ContrastBolusStopTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,1043)
    "ContributionDateTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,A002)
    "ContributionDescription": Row("X", True, {"clean-descriptors": "C"}),  # (0018,A003)
    "CountryOfResidence": Row("X", False, {}),  # (0010,2150)
    "CreationDate": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (2100,0040)
    "CreationTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (2100,0050)
    "CurrentObserverTrial": Row("X", False, {}),  # (0040,A307)
    "CurrentPatientLocation": Row("X", False, {}),  # (0038,0300)
    "CurveDate": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0008,0025)
    "CurveTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0008,0035)
    "CustodialOrganizationSequence": Row("X", True, {}),  # (0040,A07C)
    "DataSetTrailingPadding": Row("X", True, {}),  # (FFFC,FFFC)
    "Date": Row("D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}),  # (0040,A121)
    "DateOfDocumentOrVerbalTransactionTrial": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,A110)
    "DateOfInstallation": Row(
        "X",
        True,
        {"retain-dates-full": "K", "retain-dates-modified": "C", "retain-device-identity": "K"},
    ),  # (0018,1205)
    "DateOfLastCalibration": Row(
        "X",
        True,
        {"retain-dates-full": "K", "retain-dates-modified": "C", "retain-device-identity": "K"},
    ),  # (0018,1200)
    "DateOfLastDetectorCalibration": Row(
        "X/D",
        True,
        {"retain-dates-full": "K", "retain-dates-modified": "C", "retain-device-identity": "K"},
    ),  # (0018,700C)
    "DateOfManufacture": Row(
        "X",
        True,
        {"retain-dates-full": "K", "retain-dates-modified": "C", "retain-device-identity": "K"},
    ),  # (0018,1204)
    "DateOfSecondaryCapture": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,1012)
    "DateTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,A120)
    "DateTimeOfLastCalibration": Row(
        "X",
        False,
        {"retain-dates-full": "K", "retain-dates-modified": "C", "retain-device-identity": "K"},
    ),  # (0018,1202)
    "DecayCorrectionDateTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,9701)
    "DecompositionDescription": Row("X", True, {"clean-descriptors": "C"}),  # (0018,937F)
    "DerivationDescription": Row("X", True, {"clean-descriptors": "C"}),  # (0008,2111)
    "DestinationAE": Row("D", True, {"retain-device-identity": "C"}),  # (2100,0140)
    "DetectorID": Row("X/D", True, {"retain-device-identity": "K"}),  # (0018,700A)
    "DeviceAlternateIdentifier": Row("Z", True, {}),  # (3010,001B)
    "DeviceDescription": Row("X", True, {"retain-device-identity": "K"}),  # (0050,0020)
    "DeviceLabel": Row("D", True, {"retain-device-identity": "K"}),  # (3010,002D)
    "DeviceSerialNumber": Row("X/Z/D", True, {"retain-device-identity": "K"}),  # (0018,1000)
    "DeviceSettingDescription": Row("X", True, {"clean-descriptors": "C"}),  # (0016,004B)
    "DeviceUID": Row("U", True, {"retain-device-identity": "K", "retain-uids": "K"}),  # (0018,1002)
    "DigitalSignatureDateTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0400,0105)
    "DigitalSignatureUID": Row("U", True, {}),  # (0400,0100)
    "DigitalSignaturesSequence": Row("X", True, {}),  # (FFFA,FFFA)
    "DimensionOrganizationUID": Row("U", True, {"retain-uids": "K"}),  # (0020,9164)
    "DischargeDate": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0038,0030)
    "DischargeDiagnosisDescription": Row("X", False, {"clean-descriptors": "C"}),  # (0038,0040)
    "DischargeTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0038,0032)
    "DisplacementReferenceLabel": Row("X", True, {"clean-descriptors": "C"}),  # (300A,079A)
    "DistributionAddress": Row("X", False, {}),  # (4008,011A)
    "DistributionName": Row("X", False, {}),  # (4008,0119)
    "DoseReferenceDescription": Row("X", True, {"clean-descriptors": "C"}),  # (300A,0016)
    "DoseReferenceUID": Row("U", True, {"retain-uids": "K"}),  # (300A,0013)
    "DosimetricObjectiveUID": Row("U", True, {"retain-uids": "K"}),  # (3010,006E)
    "EffectiveDateTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0068,6226)
    "EncapsulatedDocument": Row("D", True, {}),  # (0042,0011)
    "EndAcquisitionDateTime": Row(
        "X/D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,9517)
    "EntityDescription": Row("X", True, {"clean-descriptors": "C"}),  # (3010,0037)
    "EntityLabel": Row("D", True, {"clean-descriptors": "C"}),  # (3010,0035)
    "EntityLongLabel": Row("D", True, {"clean-descriptors": "C"}),  # (3010,0038)
    "EntityName": Row("X", True, {"clean-descriptors": "C"}),  # (3010,0036)
    "EquipmentFrameOfReferenceDescription": Row(
        "X", True, {"clean-descriptors": "C"}
    ),  # (300A,0676)
    "EthicsCommitteeApprovalEffectivenessEndDate": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0012,0087)
    "EthicsCommitteeApprovalEffectivenessStartDate": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0012,0086)
    "EthnicGroup": Row("X", True, {"retain-patient-characteristics": "K"}),  # (0010,2160)
    "ExclusionStartDateTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,9804)
    "ExpectedCompletionDateTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,4011)
    "FailedSOPInstanceUIDList": Row("U", False, {"retain-uids": "K"}),  # (0008,0058)
    "FiducialUID": Row("U", True, {"retain-uids": "K"}),  # (0070,031A)
    "FillerOrderNumberImagingServiceRequest": Row("Z", True, {}),  # (0040,2017)
    "FilterLookupTableDescription": Row("X", True, {"clean-descriptors": "C"}),  # (003A,032B)
    "FindingsGroupRecordingDateTrial": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,A023)
    "FindingsGroupRecordingTimeTrial": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,A024)
    "FirstTreatmentDate": Row(
        "X/D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (3008,0054)
    "FixationDeviceDescription": Row("X", True, {"clean-descriptors": "C"}),  # (300A,0196)
    "FlowIdentifier": Row("D", True, {}),  # (0034,0002)
    "FlowIdentifierSequence": Row("D", True, {}),  # (0034,0001)
    "FractionGroupDescription": Row("X", True, {"clean-descriptors": "C"}),  # (300A,0072)
    "FractionationNotes": Row("Z", True, {"clean-descriptors": "C"}),  # (3010,007F)
    "FrameAcquisitionDateTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,9074)
    "FrameComments": Row("X", True, {"clean-descriptors": "C"}),  # (0020,9158)
    "FrameOfReferenceUID": Row("U", True, {"retain-uids": "K"}),  # (0020,0052)
    "FrameOriginTimestamp": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0034,0007)
    "FrameReferenceDateTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,9151)
    "FunctionalSyncPulse": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,9623)
    "GPSAltitude": Row("X", True, {}),  # (0016,0076)
    "GPSAltitudeRef": Row("X", True, {}),  # (0016,0075)
    "GPSAreaInformation": Row("X", True, {}),  # (0016,008C)
    "GPSDOP": Row("X", True, {}),  # (0016,007B)
    "GPSDateStamp": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0016,008D)
    "GPSDestBearing": Row("X", True, {}),  # (0016,0088)
    "GPSDestBearingRef": Row("X", True, {}),  # (0016,0087)
    "GPSDestDistance": Row("X", True, {}),  # (0016,008A)
    "GPSDestDistanceRef": Row("X", True, {}),  # (0016,0089)
    "GPSDestLatitude": Row("X", True, {}),  # (0016,0084)
    "GPSDestLatitudeRef": Row("X", True, {}),  # (0016,0083)
    "GPSDestLongitude": Row("X", True, {}),  # (0016,0086)
    "GPSDestLongitudeRef": Row("X", True, {}),  # (0016,0085)
    "GPSDifferential": Row("X", True, {}),  # (0016,008E)
    "GPSImgDirection": Row("X", True, {}),  # (0016,0081)
    "GPSImgDirectionRef": Row("X", True, {}),  # (0016,0080)
    "GPSLatitude": Row("X", True, {}),  # (0016,0072)
    "GPSLatitudeRef": Row("X", True, {}),  # (0016,0071)
    "GPSLongitude": Row("X", True, {}),  # (0016,0074)
    "GPSLongitudeRef": Row("X", True, {}),  # (0016,0073)
    "GPSMapDatum": Row("X", True, {}),  # (0016,0082)
    "GPSMeasureMode": Row("X", True, {}),  # (0016,007A)
    "GPSProcessingMethod": Row("X", True, {}),  # (0016,008B)
    "GPSSatellites": Row("X", True, {}),  # (0016,0078)
    "GPSSpeed": Row("X", True, {}),  # (0016,007D)
    "GPSSpeedRef": Row("X", True, {}),  # (0016,007C)
    "GPSStatus": Row("X", True, {}),  # (0016,0079)
    "GPSTimeStamp": Row("X", True, {}),  # (0016,0077)
    "GPSTrack": Row("X", True, {}),  # (0016,007F)
    "GPSTrackRef": Row("X", True, {}),  # (0016,007E)
    "GPSVersionID": Row("X", True, {}),  # (0016,0070)
    "GantryID": Row("X", True, {"retain-device-identity": "K"}),  # (0018,1008)
    "GeneratorID": Row("X", True, {"retain-device-identity": "K"}),  # (0018,1005)
    "GraphicAnnotationSequence": Row("D", True, {"clean-graphics": "C"}),  # (0070,0001)
    "HL7DocumentEffectiveTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,E004)
    "HangingProtocolCreationDateTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0072,000A)
    "HumanPerformerName": Row("X", False, {}),  # (0040,4037)
    "HumanPerformerOrganization": Row("X", False, {}),  # (0040,4036)
    "IconImageSequence": Row("X", True, {}),  # (0088,0200)
    "IdentifyingComments": Row("X", False, {"clean-descriptors": "C"}),  # (0008,4000)
    "ImageComments": Row("X", True, {"clean-descriptors": "C"}),  # (0020,4000)
    "ImagePresentationComments": Row("X", False, {}),  # (0028,4000)
    "ImagingServiceRequestComments": Row("X", False, {"clean-descriptors": "C"}),  # (0040,2400)
    "ImpedanceMeasurementDateTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (003A,0314)
    "Impressions": Row("X", False, {"clean-descriptors": "C"}),  # (4008,0300)
    "InformationIssueDateTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0068,6270)
    "InstanceCoercionDateTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0008,0015)
    "InstanceCreationDate": Row(
        "X/D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0008,0012)
    "InstanceCreationTime": Row(
        "X/Z/D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0008,0013)
    "InstanceCreatorUID": Row("U", True, {"retain-uids": "K"}),  # (0008,0014)
    "InstanceOriginStatus": Row("X", True, {}),  # (0400,0600)
    "InstitutionAddress": Row("X", True, {"retain-institution-identity": "K"}),  # (0008,0081)
    "InstitutionCodeSequence": Row(
        "X/Z/D", True, {"retain-institution-identity": "K"}
    ),  # (0008,0082)
    "InstitutionName": Row("X/Z/D", True, {"retain-institution-identity": "K"}),  # (0008,0080)
    "InstitutionalDepartmentName": Row(
        "X", True, {"retain-institution-identity": "K"}
    ),  # (0008,1040)
    "InstitutionalDepartmentTypeCodeSequence": Row(
        "X", True, {"retain-institution-identity": "K"}
    ),  # (0008,1041)
    "InstructionPerformedDateTime": Row(
        "Z/D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,9919)
    "InsurancePlanIdentification": Row("X", False, {}),  # (0010,1050)
    "IntendedFractionStartTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (3010,0085)
    "IntendedPhaseEndDate": Row(
        "X/D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (3010,004D)
    "IntendedPhaseStartDate": Row(
        "X/D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (3010,004C)
    "IntendedRecipientsOfResultsIdentificationSequence": Row("X", False, {}),  # (0040,1011)
    "InterlockDateTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (300A,0741)
    "InterlockDescription": Row("D", True, {"clean-descriptors": "C"}),  # (300A,0742)
    "InterlockOriginDescription": Row("D", True, {"clean-descriptors": "C"}),  # (300A,0783)
    "InterpretationApprovalDate": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (4008,0112)
    "InterpretationApprovalTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (4008,0113)
    "InterpretationApproverSequence": Row("X", False, {}),  # (4008,0111)
    "InterpretationAuthor": Row("X", False, {}),  # (4008,010C)
    "InterpretationDiagnosisDescription": Row(
        "X", False, {"clean-descriptors": "C"}
    ),  # (4008,0115)
    "InterpretationID": Row("X", False, {}),  # (4008,0200)
    "InterpretationIDIssuer": Row("X", False, {}),  # (4008,0202)
    "InterpretationRecordedDate": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (4008,0100)
    "InterpretationRecordedTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (4008,0101)
    "InterpretationRecorder": Row("X", False, {}),  # (4008,0102)
    "InterpretationText": Row("X", False, {"clean-descriptors": "C"}),  # (4008,010B)
    "InterpretationTranscriber": Row("X", False, {}),  # (4008,010A)
    "InterpretationTranscriptionDate": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (4008,0108)
    "InterpretationTranscriptionTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (4008,0109)
    "InterventionDrugStartTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,0035)
    "InterventionDrugStopTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,0027)
    "IrradiationEventUID": Row("U", True, {"retain-uids": "K"}),  # (0008,3010)
    "IssueDateOfImagingServiceRequest": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,2004)
    "IssueTimeOfImagingServiceRequest": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,2005)
    "IssuerOfAdmissionID": Row("X", True, {}),  # (0038,0011)
    "IssuerOfAdmissionIDSequence": Row("X", True, {}),  # (0038,0014)
    "IssuerOfClinicalTrialProtocolID": Row("X", True, {}),  # (0012,0022)
    "IssuerOfClinicalTrialSeriesID": Row("X", True, {}),  # (0012,0073)
    "IssuerOfClinicalTrialSiteID": Row("X", True, {}),  # (0012,0032)
    "IssuerOfClinicalTrialSubjectID": Row("X", True, {}),  # (0012,0041)
    "IssuerOfClinicalTrialSubjectReadingID": Row("X", True, {}),  # (0012,0043)
    "IssuerOfClinicalTrialTimePointID": Row("X", True, {}),  # (0012,0055)
    "IssuerOfPatientID": Row("X", True, {}),  # (0010,0021)
    "IssuerOfServiceEpisodeID": Row("X", True, {}),  # (0038,0061)
    "IssuerOfServiceEpisodeIDSequence": Row("X", True, {}),  # (0038,0064)
    "IssuerOfTheContainerIdentifierSequence": Row("Z", True, {}),  # (0040,0513)
    "IssuerOfTheSpecimenIdentifierSequence": Row("Z", True, {}),  # (0040,0562)
    "LabelText": Row("X/Z", True, {"clean-descriptors": "C"}),  # (2200,0002)
    "LargePaletteColorLookupTableUID": Row("U", False, {"retain-uids": "K"}),  # (0028,1214)
    "LastMenstrualDate": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0010,21D0)
    "LensMake": Row("X", True, {"retain-device-identity": "K"}),  # (0016,004F)
    "LensModel": Row("X", True, {"retain-device-identity": "K"}),  # (0016,0050)
    "LensSerialNumber": Row("X", True, {"retain-device-identity": "K"}),  # (0016,0051)
    "LensSpecification": Row("X", True, {"retain-device-identity": "K"}),  # (0016,004E)
    "LongDeviceDescription": Row("X", True, {"clean-descriptors": "C"}),  # (0050,0021)
    "MAC": Row("X", True, {}),  # (0400,0404)
    "MakerNote": Row("X", True, {"clean-descriptors": "C"}),  # (0016,002B)
    "ManufacturerDeviceClassUID": Row(
        "U", True, {"retain-device-identity": "K", "retain-uids": "K"}
    ),  # (0018,100B)
    "ManufacturerDeviceIdentifier": Row("Z", True, {"retain-device-identity": "K"}),  # (3010,0043)
    "MediaStorageSOPInstanceUID": Row("U", False, {"retain-uids": "K"}),  # (0002,0003)
    "MedicalAlerts": Row("X", False, {"clean-descriptors": "C"}),  # (0010,2000)
    "MedicalRecordLocator": Row("X", False, {}),  # (0010,1090)
    "MilitaryRank": Row("X", False, {}),  # (0010,1080)
    "ModifiedAttributesSequence": Row("X", False, {}),  # (0400,0550)
    "ModifiedImageDate": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0020,3403)
    "ModifiedImageDescription": Row("X", False, {}),  # (0020,3406)
    "ModifiedImageTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0020,3405)
    "ModifyingDeviceID": Row("X", False, {"retain-device-identity": "K"}),  # (0020,3401)
    "ModifyingSystem": Row("D", True, {"retain-device-identity": "K"}),  # (0400,0563)
    "MostRecentTreatmentDate": Row(
        "X/D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (3008,0056)
    "MultienergyAcquisitionDescription": Row("X", True, {"clean-descriptors": "C"}),  # (0018,937B)
    "MultiplexGroupUID": Row("U", True, {"retain-uids": "K"}),  # (003A,0310)
    "NameOfPhysiciansReadingStudy": Row("X", True, {}),  # (0008,1060)
    "NamesOfIntendedRecipientsOfResults": Row("X", False, {}),  # (0040,1010)
    "NetworkID": Row("X", False, {"retain-device-identity": "C"}),  # (0008,1000)
    "NonconformingDataElementValue": Row("X", False, {}),  # (0400,0552)
    "NonconformingModifiedAttributesSequence": Row("X", False, {}),  # (0400,0551)
    "ObservationDateTime": Row(
        "X/D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,A032)
    "ObservationDateTrial": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,A192)
    "ObservationStartDateTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,A033)
    "ObservationSubjectUIDTrial": Row("U", False, {"retain-uids": "K"}),  # (0040,A402)
    "ObservationTimeTrial": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,A193)
    "ObservationUID": Row("U", True, {"retain-uids": "K"}),  # (0040,A171)
    "Occupation": Row("X", True, {"clean-descriptors": "C"}),  # (0010,2180)
    "OperatorIdentificationSequence": Row("X/D", True, {}),  # (0008,1072)
    "OperatorsName": Row("X/Z/D", True, {}),  # (0008,1070)
    "OrderCallbackPhoneNumber": Row("X", False, {}),  # (0040,2010)
    "OrderCallbackTelecomInformation": Row("X", False, {}),  # (0040,2011)
    "OrderEnteredBy": Row("X", False, {}),  # (0040,2008)
    "OrderEntererLocation": Row("X", False, {}),  # (0040,2009)
    "OriginalAttributesSequence": Row("X", True, {}),  # (0400,0561)
    "Originator": Row("X", False, {"retain-device-identity": "C"}),  # (2100,0070)
    "OtherClinicalTrialProtocolIDsSequence": Row("X", True, {}),  # (0012,0023)
    "OtherPatientIDs": Row("X", True, {}),  # (0010,1000)
    "OtherPatientIDsSequence": Row("X", True, {}),  # (0010,1002)
    "OtherPatientNames": Row("X", True, {}),  # (0010,1001)
    "OverlayDate": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0008,0024)
    "OverlayTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0008,0034)
    "OverrideDateTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (300A,0760)
    "PaletteColorLookupTableUID": Row("U", True, {"retain-uids": "K"}),  # (0028,1199)
    "ParticipantSequence": Row("X", True, {}),  # (0040,A07A)
    "ParticipationDateTime": Row(
        "Z", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,A082)
    "PatientAddress": Row("X", False, {}),  # (0010,1040)
    "PatientAge": Row("X", True, {"retain-patient-characteristics": "K"}),  # (0010,1010)
    "PatientBirthDate": Row("Z", True, {}),  # (0010,0030)
    "PatientBirthName": Row("X", False, {}),  # (0010,1005)
    "PatientBirthTime": Row("X", True, {}),  # (0010,0032)
    "PatientComments": Row("X", True, {"clean-descriptors": "C"}),  # (0010,4000)
    "PatientID": Row("Z/D", True, {}),  # (0010,0020)
    "PatientInstitutionResidence": Row("X", False, {}),  # (0038,0400)
    "PatientInsurancePlanCodeSequence": Row("X", True, {}),  # (0010,0050)
    "PatientMotherBirthName": Row("X", False, {}),  # (0010,1060)
    "PatientName": Row("Z", True, {}),  # (0010,0010)
    "PatientPrimaryLanguageCodeSequence": Row("X", True, {}),  # (0010,0101)
    "PatientPrimaryLanguageModifierCodeSequence": Row("X", True, {}),  # (0010,0102)
    "PatientReligiousPreference": Row("X", False, {}),  # (0010,21F0)
    "PatientSetupPhotoDescription": Row("X", True, {"clean-descriptors": "C"}),  # (300A,0794)
    "PatientSetupUID": Row("U", False, {"retain-uids": "K"}),  # (300A,0650)
    "PatientSex": Row("Z", True, {"retain-patient-characteristics": "K"}),  # (0010,0040)
    "PatientSexNeutered": Row("X/Z", True, {"retain-patient-characteristics": "K"}),  # (0010,2203)
    "PatientSize": Row("X", True, {"retain-patient-characteristics": "K"}),  # (0010,1020)
    "PatientState": Row(
        "X", False, {"clean-descriptors": "C", "retain-patient-characteristics": "C"}
    ),  # (0038,0500)
    "PatientTelecomInformation": Row("X", False, {}),  # (0010,2155)
    "PatientTelephoneNumbers": Row("X", False, {}),  # (0010,2154)
    "PatientTransportArrangements": Row("X", False, {}),  # (0040,1004)
    "PatientTreatmentPreparationMethodDescription": Row(
        "X", True, {"clean-descriptors": "C"}
    ),  # (300A,0792)
    "PatientTreatmentPreparationProcedureParameterDescription": Row(
        "X", True, {"clean-descriptors": "C"}
    ),  # (300A,078E)
    "PatientWeight": Row("X", True, {"retain-patient-characteristics": "K"}),  # (0010,1030)
    "PerformedLocation": Row("X", False, {}),  # (0040,0243)
    "PerformedProcedureStepDescription": Row("X", True, {"clean-descriptors": "C"}),  # (0040,0254)
    "PerformedProcedureStepEndDate": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,0250)
    "PerformedProcedureStepEndDateTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,4051)
    "PerformedProcedureStepEndTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,0251)
    "PerformedProcedureStepID": Row("X", True, {}),  # (0040,0253)
    "PerformedProcedureStepStartDate": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,0244)
    "PerformedProcedureStepStartDateTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,4050)
    "PerformedProcedureStepStartTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,0245)
    "PerformedStationAETitle": Row("X", False, {"retain-device-identity": "C"}),  # (0040,0241)
    "PerformedStationGeographicLocationCodeSequence": Row(
        "X", False, {"retain-device-identity": "K"}
    ),  # (0040,4030)
    "PerformedStationName": Row("X", False, {"retain-device-identity": "K"}),  # (0040,0242)
    "PerformedStationNameCodeSequence": Row(
        "X", False, {"retain-device-identity": "K"}
    ),  # (0040,4028)
    "PerformingPhysicianIdentificationSequence": Row("X", True, {}),  # (0008,1052)
    "PerformingPhysicianName": Row("X", True, {}),  # (0008,1050)
    "PersonAddress": Row("X", True, {}),  # (0040,1102)
    "PersonIdentificationCodeSequence": Row("D", True, {}),  # (0040,1101)
    "PersonName": Row("D", True, {}),  # (0040,A123)
    "PersonTelecomInformation": Row("X", True, {}),  # (0040,1104)
    "PersonTelephoneNumbers": Row("X", True, {}),  # (0040,1103)
    "PhysicianApprovingInterpretation": Row("X", False, {}),  # (4008,0114)
    "PhysiciansOfRecord": Row("X", True, {}),  # (0008,1048)
    "PhysiciansOfRecordIdentificationSequence": Row("X", True, {}),  # (0008,1049)
    "PhysiciansReadingStudyIdentificationSequence": Row("X", True, {}),  # (0008,1062)
    "PlacerOrderNumberImagingServiceRequest": Row("Z", True, {}),  # (0040,2016)
    "PlateID": Row("X", True, {"retain-device-identity": "K"}),  # (0018,1004)
    "PositionAcquisitionTemplateDescription": Row(
        "X", True, {"clean-descriptors": "C"}
    ),  # (3002,0123)
    "PositionAcquisitionTemplateName": Row("X", True, {"clean-descriptors": "C"}),  # (3002,0121)
    "PreMedication": Row("X", False, {"retain-patient-characteristics": "C"}),  # (0040,0012)
    "PregnancyStatus": Row("X", False, {"retain-patient-characteristics": "K"}),  # (0010,21C0)
    "PrescriptionDescription": Row("X", True, {"clean-descriptors": "C"}),  # (300A,000E)
    "PrescriptionNotes": Row("Z", True, {"clean-descriptors": "C"}),  # (3010,007B)
    "PrescriptionNotesSequence": Row("Z", True, {"clean-descriptors": "C"}),  # (3010,0081)
    "PresentationCreationDate": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0070,0082)
    "PresentationCreationTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0070,0083)
    "PresentationDisplayCollectionUID": Row("U", True, {"retain-uids": "K"}),  # (0070,1101)
    "PresentationSequenceCollectionUID": Row("U", True, {"retain-uids": "K"}),  # (0070,1102)
    "PriorTreatmentDoseDescription": Row("X", True, {"clean-descriptors": "C"}),  # (3010,0061)
    "ProcedureStepCancellationDateTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,4052)
    "ProductExpirationDateTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0044,000B)
    "ProtocolName": Row("X/D", True, {"clean-descriptors": "C"}),  # (0018,1030)
    "PyramidDescription": Row("X", True, {"clean-descriptors": "C"}),  # (0008,1088)
    "PyramidLabel": Row("X", True, {"clean-descriptors": "C"}),  # (0020,0027)
    "PyramidUID": Row("U", True, {"retain-uids": "K"}),  # (0008,0019)
    "ROICreatorSequence": Row("X", True, {}),  # (3006,004D)
    "ROIDateTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (3006,002D)
    "ROIDescription": Row("X", True, {"clean-descriptors": "C"}),  # (3006,0028)
    "ROIGenerationDescription": Row("X", True, {"clean-descriptors": "C"}),  # (3006,0038)
    "ROIInterpreter": Row("Z", True, {}),  # (3006,00A6)
    "ROIInterpreterSequence": Row("X", True, {}),  # (3006,004E)
    "ROIName": Row("Z", True, {"clean-descriptors": "C"}),  # (3006,0026)
    "ROIObservationDateTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (3006,002E)
    "ROIObservationDescription": Row("X", True, {"clean-descriptors": "C"}),  # (3006,0088)
    "ROIObservationLabel": Row("X", True, {"clean-descriptors": "C"}),  # (3006,0085)
    "RTAccessoryDeviceSlotID": Row("Z", True, {}),  # (300A,0615)
    "RTAccessoryHolderSlotID": Row("Z", True, {}),  # (300A,0611)
    "RTPhysicianIntentNarrative": Row("Z", True, {"clean-descriptors": "C"}),  # (3010,005A)
    "RTPlanDate": Row(
        "X/D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (300A,0006)
    "RTPlanDescription": Row("X", True, {"clean-descriptors": "C"}),  # (300A,0004)
    "RTPlanLabel": Row("D", True, {"clean-descriptors": "C"}),  # (300A,0002)
    "RTPlanName": Row("X", True, {"clean-descriptors": "C"}),  # (300A,0003)
    "RTPlanTime": Row(
        "X/D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (300A,0007)
    "RTPrescriptionLabel": Row("D", True, {"clean-descriptors": "C"}),  # (3010,0054)
    "RTToleranceSetLabel": Row("D", True, {"clean-descriptors": "C"}),  # (300A,062A)
    "RTTreatmentApproachLabel": Row("X/D", True, {"clean-descriptors": "C"}),  # (3010,0056)
    "RTTreatmentPhaseUID": Row("U", True, {"retain-uids": "K"}),  # (3010,003B)
    "RadiationDoseIdentificationLabel": Row("D", True, {"clean-descriptors": "C"}),  # (300A,0619)
    "RadiationDoseInVivoMeasurementLabel": Row(
        "D", True, {"clean-descriptors": "C"}
    ),  # (300A,0623)
    "RadiationGenerationModeDescription": Row("Z", True, {"clean-descriptors": "C"}),  # (300A,067D)
    "RadiationGenerationModeLabel": Row("D", True, {"clean-descriptors": "C"}),  # (300A,067C)
    "RadiopharmaceuticalStartDateTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,1078)
    "RadiopharmaceuticalStartTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,1072)
    "RadiopharmaceuticalStopDateTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,1079)
    "RadiopharmaceuticalStopTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,1073)
    "ReasonForOmissionDescription": Row("X", True, {"clean-descriptors": "C"}),  # (300C,0113)
    "ReasonForRequestedProcedureCodeSequence": Row(
        "X", True, {"clean-descriptors": "C"}
    ),  # (0040,100A)
    "ReasonForStudy": Row("X", False, {"clean-descriptors": "C"}),  # (0032,1030)
    "ReasonForSuperseding": Row("Z", True, {"clean-descriptors": "C"}),  # (3010,005C)
    "ReasonForTheAttributeModification": Row("D", True, {"clean-descriptors": "C"}),  # (0400,0565)
    "ReasonForTheImagingServiceRequest": Row("X", False, {"clean-descriptors": "C"}),  # (0040,2001)
    "ReasonForTheRequestedProcedure": Row("X", True, {"clean-descriptors": "C"}),  # (0040,1002)
    "ReasonForVisit": Row("X", True, {"clean-descriptors": "C"}),  # (0032,1066)
    "ReasonForVisitCodeSequence": Row("X", True, {"clean-descriptors": "C"}),  # (0032,1067)
    "ReceivingAE": Row("X", False, {"retain-device-identity": "C"}),  # (0074,1234)
    "RecordedRTControlPointDateTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (300A,073A)
    "ReferencedConceptualVolumeUID": Row("U", True, {"retain-uids": "K"}),  # (3010,000B)
    "ReferencedDateTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,A13A)
    "ReferencedDigitalSignatureSequence": Row("X", True, {}),  # (0400,0402)
    "ReferencedDoseReferenceUID": Row("U", True, {"retain-uids": "K"}),  # (300A,0083)
    "ReferencedDosimetricObjectiveUID": Row("U", True, {"retain-uids": "K"}),  # (3010,006F)
    "ReferencedFiducialsUID": Row("U", True, {"retain-uids": "K"}),  # (3010,0031)
    "ReferencedFrameOfReferenceUID": Row("U", True, {"retain-uids": "K"}),  # (3006,0024)
    "ReferencedGeneralPurposeScheduledProcedureStepTransactionUID": Row(
        "U", False, {"retain-uids": "K"}
    ),  # (0040,4023)
    "ReferencedImageSequence": Row("X/Z/U*", True, {"retain-uids": "K"}),  # (0008,1140)
    "ReferencedObservationUIDTrial": Row("U", False, {"retain-uids": "K"}),  # (0040,A172)
    "ReferencedPatientAliasSequence": Row("X", False, {}),  # (0038,0004)
    "ReferencedPatientPhotoSequence": Row("X", True, {}),  # (0010,1100)
    "ReferencedPatientSequence": Row("X", True, {"retain-uids": "K"}),  # (0008,1120)
    "ReferencedPerformedProcedureStepSequence": Row(
        "X/Z/D", True, {"retain-uids": "K"}
    ),  # (0008,1111)
    "ReferencedSOPInstanceMACSequence": Row("X", True, {}),  # (0400,0403)
    "ReferencedSOPInstanceUID": Row("U", True, {"retain-uids": "K"}),  # (0008,1155)
    "ReferencedSOPInstanceUIDInFile": Row("U", False, {"retain-uids": "K"}),  # (0004,1511)
    "ReferencedStudySequence": Row("X/Z", True, {"retain-uids": "K"}),  # (0008,1110)
    "ReferencedTreatmentPositionGroupUID": Row("U", True, {"retain-uids": "K"}),  # (300A,0785)
    "ReferringPhysicianAddress": Row("X", False, {}),  # (0008,0092)
    "ReferringPhysicianIdentificationSequence": Row("X", True, {}),  # (0008,0096)
    "ReferringPhysicianName": Row("Z", True, {}),  # (0008,0090)
    "ReferringPhysicianTelephoneNumbers": Row("X", False, {}),  # (0008,0094)
    "RegionOfResidence": Row("X", False, {}),  # (0010,2152)
    "RelatedFrameOfReferenceUID": Row("U", False, {"retain-uids": "K"}),  # (3006,00C2)
    "RequestAttributesSequence": Row("X", True, {"clean-descriptors": "C"}),  # (0040,0275)
    "RequestedContrastAgent": Row("X", False, {"clean-descriptors": "C"}),  # (0032,1070)
    "RequestedProcedureComments": Row("X", False, {"clean-descriptors": "C"}),  # (0040,1400)
    "RequestedProcedureDescription": Row("X/Z", True, {"clean-descriptors": "C"}),  # (0032,1060)
    "RequestedProcedureID": Row("X", False, {}),  # (0040,1001)
    "RequestedProcedureLocation": Row("X", False, {}),  # (0040,1005)
    "RequestedSOPInstanceUID": Row("U", False, {"retain-uids": "K"}),  # (0000,1001)
    "RequestedSeriesDescription": Row("X", True, {"clean-descriptors": "C"}),  # (0018,9937)
    "RequestingAE": Row("X", False, {"retain-device-identity": "C"}),  # (0074,1236)
    "RequestingPhysician": Row("X", False, {}),  # (0032,1032)
    "RequestingService": Row("X", False, {}),  # (0032,1033)
    "RespiratoryMotionCompensationTechniqueDescription": Row(
        "X", True, {"clean-descriptors": "C"}
    ),  # (0018,9185)
    "ResponsibleOrganization": Row("X", True, {}),  # (0010,2299)
    "ResponsiblePerson": Row("X", True, {}),  # (0010,2297)
    "ResultsComments": Row("X", False, {"clean-descriptors": "C"}),  # (4008,4000)
    "ResultsDistributionListSequence": Row("X", False, {}),  # (4008,0118)
    "ResultsID": Row("X", False, {}),  # (4008,0040)
    "ResultsIDIssuer": Row("X", False, {}),  # (4008,0042)
    "RetrieveAETitle": Row("X", True, {"retain-device-identity": "C"}),  # (0008,0054)
    "ReviewDate": Row(
        "Z", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (300E,0004)
    "ReviewTime": Row(
        "Z", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (300E,0005)
    "ReviewerName": Row("X/Z", True, {}),  # (300E,0008)
    "SOPAuthorizationDateTime": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0100,0420)
    "SOPInstanceUID": Row("U", True, {"retain-uids": "K"}),  # (0008,0018)
    "SafePositionExitDate": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (3008,0162)
    "SafePositionExitTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (3008,0164)
    "SafePositionReturnDate": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (3008,0166)
    "SafePositionReturnTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (3008,0168)
    "ScheduledAdmissionDate": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0038,001A)
    "ScheduledAdmissionTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0038,001B)
    "ScheduledDischargeDate": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0038,001C)
    "ScheduledDischargeTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0038,001D)
    "ScheduledHumanPerformersSequence": Row("X", False, {}),  # (0040,4034)
    "ScheduledPatientInstitutionResidence": Row("X", False, {}),  # (0038,001E)
    "ScheduledPerformingPhysicianIdentificationSequence": Row("X", False, {}),  # (0040,000B)
    "ScheduledPerformingPhysicianName": Row("X", False, {}),  # (0040,0006)
    "ScheduledProcedureStepDescription": Row("X", True, {"clean-descriptors": "C"}),  # (0040,0007)
    "ScheduledProcedureStepEndDate": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,0004)
    "ScheduledProcedureStepEndTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,0005)
    "ScheduledProcedureStepExpirationDateTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,4008)
    "ScheduledProcedureStepID": Row("X", True, {}),  # (0040,0009)
    "ScheduledProcedureStepLocation": Row(
        "X", False, {"retain-device-identity": "K"}
    ),  # (0040,0011)
    "ScheduledProcedureStepModificationDateTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,4010)
    "ScheduledProcedureStepStartDate": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,0002)
    "ScheduledProcedureStepStartDateTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,4005)
    "ScheduledProcedureStepStartTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,0003)
    "ScheduledStationAETitle": Row("X", False, {"retain-device-identity": "C"}),  # (0040,0001)
    "ScheduledStationGeographicLocationCodeSequence": Row(
        "X", False, {"retain-device-identity": "K"}
    ),  # (0040,4027)
    "ScheduledStationName": Row("X", False, {"retain-device-identity": "K"}),  # (0040,0010)
    "ScheduledStationNameCodeSequence": Row(
        "X", False, {"retain-device-identity": "K"}
    ),  # (0040,4025)
    "ScheduledStudyLocation": Row("X", False, {"retain-device-identity": "K"}),  # (0032,1020)
    "ScheduledStudyLocationAETitle": Row(
        "X", False, {"retain-device-identity": "C"}
    ),  # (0032,1021)
    "ScheduledStudyStartDate": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0032,1000)
    "ScheduledStudyStartTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0032,1001)
    "ScheduledStudyStopDate": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0032,1010)
    "ScheduledStudyStopTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0032,1011)
    "SelectorAEValue": Row("D", True, {"retain-device-identity": "C"}),  # (0072,005E)
    "SelectorASValue": Row("D", True, {"retain-patient-characteristics": "K"}),  # (0072,005F)
    "SelectorDAValue": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0072,0061)
    "SelectorDTValue": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0072,0063)
    "SelectorLOValue": Row("D", True, {"clean-descriptors": "C"}),  # (0072,0066)
    "SelectorLTValue": Row("D", True, {"clean-descriptors": "C"}),  # (0072,0068)
    "SelectorOBValue": Row("D", True, {}),  # (0072,0065)
    "SelectorPNValue": Row("D", True, {}),  # (0072,006A)
    "SelectorSHValue": Row("D", True, {"clean-descriptors": "C"}),  # (0072,006C)
    "SelectorSTValue": Row("D", True, {"clean-descriptors": "C"}),  # (0072,006E)
    "SelectorTMValue": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0072,006B)
    "SelectorUNValue": Row("D", True, {}),  # (0072,006D)
    "SelectorURValue": Row("D", True, {}),  # (0072,0071)
    "SelectorUTValue": Row("D", True, {"clean-descriptors": "C"}),  # (0072,0070)
    "SeriesDate": Row(
        "X/D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0008,0021)
    "SeriesDescription": Row("X", True, {"clean-descriptors": "C"}),  # (0008,103E)
    "SeriesInstanceUID": Row("U", True, {"retain-uids": "K"}),  # (0020,000E)
    "SeriesTime": Row(
        "X/D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0008,0031)
    "ServiceEpisodeDescription": Row("X", True, {"clean-descriptors": "C"}),  # (0038,0062)
    "ServiceEpisodeID": Row("X", True, {}),  # (0038,0060)
    "SetupTechniqueDescription": Row("X", True, {"clean-descriptors": "C"}),  # (300A,01B2)
    "ShieldingDeviceDescription": Row("X", True, {"clean-descriptors": "C"}),  # (300A,01A6)
    "SlideIdentifier": Row("X", False, {}),  # (0040,06FA)
    "SmokingStatus": Row("X", False, {"retain-patient-characteristics": "K"}),  # (0010,21A0)
    "SourceConceptualVolumeUID": Row("U", True, {"retain-uids": "K"}),  # (3010,0015)
    "SourceEndDateTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,936A)
    "SourceFrameOfReferenceUID": Row("U", True, {"retain-uids": "K"}),  # (0064,0003)
    "SourceIdentifier": Row("D", True, {}),  # (0034,0005)
    "SourceImageSequence": Row("X/Z/U*", True, {"retain-uids": "K"}),  # (0008,2112)
    "SourceManufacturer": Row("X", True, {"retain-device-identity": "K"}),  # (300A,0216)
    "SourceOfPreviousValues": Row("Z", True, {"retain-institution-identity": "K"}),  # (0400,0564)
    "SourceSerialNumber": Row("X/Z", True, {"retain-device-identity": "K"}),  # (3008,0105)
    "SourceStartDateTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,9369)
    "SourceStrengthReferenceDate": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (300A,022C)
    "SourceStrengthReferenceTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (300A,022E)
    "SpecialNeeds": Row("X", False, {"retain-patient-characteristics": "C"}),  # (0038,0050)
    "SpecimenAccessionNumber": Row("X", False, {}),  # (0040,050A)
    "SpecimenDetailedDescription": Row("X", True, {"clean-descriptors": "C"}),  # (0040,0602)
    "SpecimenIdentifier": Row("D", True, {}),  # (0040,0551)
    "SpecimenPreparationSequence": Row("Z", True, {"clean-structured-content": "C"}),  # (0040,0610)
    "SpecimenShortDescription": Row("X", True, {"clean-descriptors": "C"}),  # (0040,0600)
    "SpecimenUID": Row("U", True, {"retain-uids": "K"}),  # (0040,0554)
    "StartAcquisitionDateTime": Row(
        "X/D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,9516)
    "StationAETitle": Row("X", True, {"retain-device-identity": "C"}),  # (0008,0055)
    "StationName": Row("X/Z/D", True, {"retain-device-identity": "K"}),  # (0008,1010)
    "StorageMediaFileSetUID": Row("U", True, {"retain-uids": "K"}),  # (0088,0140)
    "StructureSetDate": Row(
        "Z", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (3006,0008)
    "StructureSetDescription": Row("X", True, {"clean-descriptors": "C"}),  # (3006,0006)
    "StructureSetLabel": Row("D", True, {"clean-descriptors": "C"}),  # (3006,0002)
    "StructureSetName": Row("X", True, {"clean-descriptors": "C"}),  # (3006,0004)
    "StructureSetTime": Row(
        "Z", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (3006,0009)
    "StudyArrivalDate": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0032,1040)
    "StudyArrivalTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0032,1041)
    "StudyComments": Row("X", False, {"clean-descriptors": "C"}),  # (0032,4000)
    "StudyCompletionDate": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0032,1050)
    "StudyCompletionTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0032,1051)
    "StudyDate": Row(
        "Z", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0008,0020)
    "StudyDescription": Row("X", True, {"clean-descriptors": "C"}),  # (0008,1030)
    "StudyID": Row("Z", True, {}),  # (0020,0010)
    "StudyIDIssuer": Row("X", False, {}),  # (0032,0012)
    "StudyInstanceUID": Row("U", True, {"retain-uids": "K"}),  # (0020,000D)
    "StudyReadDate": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0032,0034)
    "StudyReadTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0032,0035)
    "StudyTime": Row(
        "Z", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0008,0030)
    "StudyVerifiedDate": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0032,0032)
    "StudyVerifiedTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0032,0033)
    "SubstanceAdministrationDateTime": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0044,0010)
    "SynchronizationFrameOfReferenceUID": Row("U", True, {"retain-uids": "K"}),  # (0020,0200)
    "TargetUID": Row("U", True, {"retain-uids": "K"}),  # (0018,2042)
    "TelephoneNumberTrial": Row("X", False, {}),  # (0040,A354)
    "TemplateExtensionCreatorUID": Row("U", False, {"retain-uids": "K"}),  # (0040,DB0D)
    "TemplateExtensionOrganizationUID": Row("U", False, {"retain-uids": "K"}),  # (0040,DB0C)
    "TemplateLocalVersion": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,DB07)
    "TemplateVersion": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,DB06)
    "TextComments": Row("X", False, {}),  # (4000,4000)
    "TextString": Row("X", False, {}),  # (2030,0020)
    "Time": Row("D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}),  # (0040,A122)
    "TimeOfDocumentCreationOrVerbalTransactionTrial": Row(
        "X", False, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,A112)
    "TimeOfLastCalibration": Row(
        "X",
        True,
        {"retain-dates-full": "K", "retain-dates-modified": "C", "retain-device-identity": "K"},
    ),  # (0018,1201)
    "TimeOfLastDetectorCalibration": Row(
        "X/D",
        True,
        {"retain-dates-full": "K", "retain-dates-modified": "C", "retain-device-identity": "K"},
    ),  # (0018,700E)
    "TimeOfSecondaryCapture": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0018,1014)
    "TimezoneOffsetFromUTC": Row(
        "X", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0008,0201)
    "TopicAuthor": Row("X", False, {}),  # (0088,0910)
    "TopicKeywords": Row("X", False, {}),  # (0088,0912)
    "TopicSubject": Row("X", False, {}),  # (0088,0906)
    "TopicTitle": Row("X", False, {}),  # (0088,0904)
    "TrackingUID": Row("U", True, {"retain-uids": "K"}),  # (0062,0021)
    "TransactionUID": Row("U", False, {"retain-uids": "K"}),  # (0008,1195)
    "TransducerIdentificationSequence": Row(
        "X", True, {"retain-device-identity": "K"}
    ),  # (0018,5011)
    "TreatmentControlPointDate": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (3008,0024)
    "TreatmentControlPointTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (3008,0025)
    "TreatmentDate": Row(
        "X/D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (3008,0250)
    "TreatmentMachineName": Row("X/Z", True, {"retain-device-identity": "K"}),  # (300A,00B2)
    "TreatmentPositionGroupLabel": Row("D", True, {"clean-descriptors": "C"}),  # (300A,0608)
    "TreatmentPositionGroupUID": Row("U", True, {"retain-uids": "K"}),  # (300A,0609)
    "TreatmentSessionUID": Row("U", True, {"retain-uids": "K"}),  # (300A,0700)
    "TreatmentSite": Row("X/D", True, {"clean-descriptors": "C"}),  # (3010,0077)
    "TreatmentSites": Row("X", False, {"clean-descriptors": "C"}),  # (300A,000B)
    "TreatmentTechniqueNotes": Row("Z", True, {"clean-descriptors": "C"}),  # (3010,007A)
    "TreatmentTime": Row(
        "X/D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (3008,0251)
    "TreatmentToleranceViolationDateTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (300A,0736)
    "TreatmentToleranceViolationDescription": Row(
        "D", True, {"clean-descriptors": "C"}
    ),  # (300A,0734)
    "UDISequence": Row("X", True, {"retain-device-identity": "K"}),  # (0018,100A)
    "UID": Row("U", True, {}),  # (0040,A124)
    "UniqueDeviceIdentifier": Row("X", True, {"retain-device-identity": "K"}),  # (0018,1009)
    "UserContentLabel": Row("D", True, {"clean-descriptors": "C"}),  # (3010,0033)
    "UserContentLongLabel": Row("D", True, {"clean-descriptors": "C"}),  # (3010,0034)
    "VerbalSourceIdentifierCodeSequenceTrial": Row("X", False, {}),  # (0040,A358)
    "VerbalSourceTrial": Row("X", False, {}),  # (0040,A352)
    "VerificationDateTime": Row(
        "D", True, {"retain-dates-full": "K", "retain-dates-modified": "C"}
    ),  # (0040,A030)
    "VerifyingObserverIdentificationCodeSequence": Row("Z", True, {}),  # (0040,A088)
    "VerifyingObserverName": Row("D", True, {}),  # (0040,A075)
    "VerifyingObserverSequence": Row("D", True, {}),  # (0040,A073)
    "VerifyingOrganization": Row("D", True, {}),  # (0040,A027)
    "VisitComments": Row("X", False, {"clean-descriptors": "C"}),  # (0038,4000)
    "WaveformFilterDescription": Row("X", True, {"clean-descriptors": "C"}),  # (003A,0329)
    "XRayDetectorID": Row("D", True, {"retain-device-identity": "K"}),  # (0018,9371)
    "XRayDetectorLabel": Row("X", True, {"retain-device-identity": "K"}),  # (0018,9373)
    "XRaySourceID": Row("D", True, {"retain-device-identity": "K"}),  # (0018,9367)
}
