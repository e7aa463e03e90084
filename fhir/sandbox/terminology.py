"""Code systems and the administrative and vital-sign terms the sandbox uses.

A term is a ``(system, code, display)`` tuple. Codes and displays here and in the sibling
vocabulary modules (labs, drugs, problems, vaccines, allergens) follow the published code
systems, and Synthea's modules where the same concepts appear.
"""

from __future__ import annotations

Term = tuple[str, str, str]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"
NPI = "http://hl7.org/fhir/sid/us-npi"
BCP47 = "urn:ietf:bcp:47"
THO = "http://terminology.hl7.org/CodeSystem/"
OBSERVATION_CATEGORY = THO + "observation-category"
INTERPRETATION = THO + "v3-ObservationInterpretation"
CONDITION_CLINICAL = THO + "condition-clinical"
CONDITION_VERIFICATION = THO + "condition-ver-status"
CONDITION_CATEGORY = THO + "condition-category"
ALLERGY_CLINICAL = THO + "allergyintolerance-clinical"
ALLERGY_VERIFICATION = THO + "allergyintolerance-verification"
ACT_CODE = THO + "v3-ActCode"
PARTICIPATION = THO + "v3-ParticipationType"

VITAL_SIGNS: Term = (OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")
LABORATORY: Term = (OBSERVATION_CATEGORY, "laboratory", "Laboratory")
SOCIAL_HISTORY: Term = (OBSERVATION_CATEGORY, "social-history", "Social History")
LAB_SERVICE: Term = (THO + "v2-0074", "LAB", "Laboratory")
MRN_TYPE: Term = (THO + "v2-0203", "MR", "Medical record number")
HEALTHCARE_PROVIDER: Term = (THO + "organization-type", "prov", "Healthcare Provider")
OTHER_ORGANIZATION: Term = (THO + "organization-type", "other", "Other")
PRIMARY_PERFORMER: Term = (PARTICIPATION, "PPRF", "primary performer")
ATTENDER: Term = (PARTICIPATION, "ATND", "attender")
ADMINISTERING_PROVIDER: Term = (THO + "v2-0443", "AP", "Administering Provider")
DISCHARGED_HOME: Term = (THO + "discharge-disposition", "home", "Home")
NEXT_OF_KIN: Term = (THO + "v2-0131", "N", "Next-of-Kin")
DOCTOR_OF_MEDICINE: Term = (THO + "v2-0360|2.7", "MD", "Doctor of Medicine")
DOCTOR_OF_OSTEOPATHY: Term = (THO + "v2-0360|2.7", "DO", "Doctor of Osteopathy")
ORDERED_DOSE: Term = (THO + "dose-rate-type", "ordered", "Ordered")
CONTINUOUS_THERAPY: Term = (
    THO + "medicationrequest-course-of-therapy",
    "continuous",
    "Continuous long term therapy",
)
ACUTE_THERAPY: Term = (THO + "medicationrequest-course-of-therapy", "acute", "Short course (acute) therapy")
MARITAL_STATUS = {
    "M": (THO + "v3-MaritalStatus", "M", "Married"),
    "S": (THO + "v3-MaritalStatus", "S", "Never Married"),
    "D": (THO + "v3-MaritalStatus", "D", "Divorced"),
    "W": (THO + "v3-MaritalStatus", "W", "Widowed"),
}
INTERPRETATIONS = {
    "L": (INTERPRETATION, "L", "Low"),
    "N": (INTERPRETATION, "N", "Normal"),
    "H": (INTERPRETATION, "H", "High"),
}
SMOKING_STATUS: Term = (LOINC, "72166-2", "Tobacco smoking status")
SMOKING = {
    "never": (SNOMED, "266919005", "Never smoked tobacco (finding)"),
    "former": (SNOMED, "8517006", "Ex-smoker (finding)"),
    "daily": (SNOMED, "449868002", "Smokes tobacco daily (finding)"),
}

# -- encounters ----------------------------------------------------------------------------

ENCOUNTER_CLASS = {
    "AMB": (ACT_CODE, "AMB", "ambulatory"),
    "EMER": (ACT_CODE, "EMER", "emergency"),
    "IMP": (ACT_CODE, "IMP", "inpatient encounter"),
    "VR": (ACT_CODE, "VR", "virtual"),
}
# kind -> (class, type)
ENCOUNTER_KINDS: dict[str, tuple[str, Term]] = {
    "checkup": ("AMB", (SNOMED, "185349003", "Encounter for check up (procedure)")),
    "well_child": ("AMB", (SNOMED, "410620009", "Well child visit (procedure)")),
    "followup": ("AMB", (SNOMED, "390906007", "Follow-up encounter (procedure)")),
    "symptom": ("AMB", (SNOMED, "185345009", "Encounter for symptom (procedure)")),
    "emergency": ("EMER", (SNOMED, "50849002", "Emergency room admission (procedure)")),
    "inpatient": ("IMP", (SNOMED, "183452005", "Emergency hospital admission (procedure)")),
    "telemedicine": ("VR", (SNOMED, "448337001", "Telemedicine consultation with patient (procedure)")),
}

# -- vital signs (FHIR R4B observation-vitalsigns profile codes) -----------------------------

HEART_RATE: Term = (LOINC, "8867-4", "Heart rate")
RESPIRATORY_RATE: Term = (LOINC, "9279-1", "Respiratory rate")
BODY_TEMPERATURE: Term = (LOINC, "8310-5", "Body temperature")
BODY_WEIGHT: Term = (LOINC, "29463-7", "Body weight")
BODY_HEIGHT: Term = (LOINC, "8302-2", "Body height")
BMI: Term = (LOINC, "39156-5", "Body mass index (BMI) [Ratio]")
BLOOD_PRESSURE: Term = (LOINC, "85354-9", "Blood pressure panel with all children optional")
SYSTOLIC: Term = (LOINC, "8480-6", "Systolic blood pressure")
DIASTOLIC: Term = (LOINC, "8462-4", "Diastolic blood pressure")
PULSE_OXIMETRY: Term = (LOINC, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")
OXYGEN_SATURATION: Term = (LOINC, "2708-6", "Oxygen saturation in Arterial blood")
