"""The clinical vocabulary the sandbox draws from: LOINC, SNOMED CT, RxNorm, CVX and UCUM.

Codes and displays follow the published code systems (and Synthea's modules, where the same
concepts appear). A term is a ``(system, code, display)`` tuple.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

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

# -- laboratory ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lab:
    """A laboratory test: its code, UCUM unit, reference range and value distributions.

    ``normal`` is (mean, sd) for an unaffected person (``female`` overrides it for women);
    ``affected`` maps a trait (a condition key, ``infection``, ``warfarin``) to the (mean, sd)
    used when the patient has it, first match wins.
    """

    code: str
    display: str
    unit: str
    low: float | None
    high: float | None
    normal: tuple[float, float]
    decimals: int
    affected: tuple[tuple[str, tuple[float, float]], ...] = ()
    female: tuple[float, float] | None = None


LABS = {
    lab.code: lab
    for lab in (
        Lab(
            "2339-0",
            "Glucose [Mass/volume] in Blood",
            "mg/dL",
            70,
            99,
            (88, 8),
            0,
            (("diabetes", (158, 35)), ("prediabetes", (108, 7))),
        ),
        Lab(
            "4548-4",
            "Hemoglobin A1c/Hemoglobin.total in Blood",
            "%",
            4.0,
            5.6,
            (5.2, 0.25),
            1,
            (("diabetes", (7.6, 0.9)), ("prediabetes", (6.0, 0.2))),
        ),
        Lab(
            "3094-0",
            "Urea nitrogen [Mass/volume] in Serum or Plasma",
            "mg/dL",
            7,
            20,
            (14, 3),
            0,
            (("ckd", (32, 6)),),
        ),
        Lab(
            "2160-0",
            "Creatinine [Mass/volume] in Serum or Plasma",
            "mg/dL",
            0.6,
            1.3,
            (0.98, 0.14),
            2,
            (("ckd", (1.9, 0.3)),),
            female=(0.8, 0.12),
        ),
        Lab("17861-6", "Calcium [Mass/volume] in Serum or Plasma", "mg/dL", 8.6, 10.3, (9.4, 0.35), 1),
        Lab("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 136, 145, (140, 2), 0),
        Lab(
            "2823-3",
            "Potassium [Moles/volume] in Serum or Plasma",
            "mmol/L",
            3.5,
            5.1,
            (4.2, 0.3),
            1,
            (("ckd", (4.9, 0.35)),),
        ),
        Lab("2075-0", "Chloride [Moles/volume] in Serum or Plasma", "mmol/L", 98, 107, (103, 2), 0),
        Lab(
            "2028-9",
            "Carbon dioxide, total [Moles/volume] in Serum or Plasma",
            "mmol/L",
            22,
            29,
            (25.5, 1.8),
            0,
        ),
        Lab(
            "2093-3",
            "Cholesterol [Mass/volume] in Serum or Plasma",
            "mg/dL",
            None,
            199,
            (182, 24),
            0,
            (("hyperlipidemia", (238, 30)),),
        ),
        Lab(
            "2571-8",
            "Triglyceride [Mass/volume] in Serum or Plasma",
            "mg/dL",
            None,
            149,
            (118, 32),
            0,
            (("hyperlipidemia", (212, 48)), ("diabetes", (182, 44))),
        ),
        Lab(
            "2085-9",
            "Cholesterol in HDL [Mass/volume] in Serum or Plasma",
            "mg/dL",
            40,
            None,
            (56, 11),
            0,
            (("diabetes", (41, 7)),),
        ),
        Lab(
            "18262-6",
            "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay",
            "mg/dL",
            None,
            99,
            (104, 21),
            0,
            (("hyperlipidemia", (152, 27)),),
        ),
        Lab(
            "6690-2",
            "Leukocytes [#/volume] in Blood by Automated count",
            "10*3/uL",
            4.5,
            11.0,
            (7.0, 1.4),
            1,
            (("infection", (13.8, 2.4)),),
        ),
        Lab(
            "789-8",
            "Erythrocytes [#/volume] in Blood by Automated count",
            "10*6/uL",
            4.2,
            5.9,
            (5.0, 0.35),
            2,
            female=(4.5, 0.3),
        ),
        Lab(
            "718-7",
            "Hemoglobin [Mass/volume] in Blood",
            "g/dL",
            12.0,
            17.5,
            (15.0, 1.0),
            1,
            (("ckd", (11.2, 0.9)),),
            female=(13.4, 0.9),
        ),
        Lab(
            "4544-3",
            "Hematocrit [Volume Fraction] of Blood by Automated count",
            "%",
            36,
            50,
            (44, 2.8),
            1,
            (("ckd", (34, 2.5)),),
            female=(40, 2.6),
        ),
        Lab("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 150, 400, (262, 52), 0),
        Lab(
            "3016-3",
            "Thyrotropin [Units/volume] in Serum or Plasma",
            "m[IU]/L",
            0.4,
            4.0,
            (1.8, 0.7),
            2,
            (("hypothyroidism", (5.6, 2.0)),),
        ),
        Lab(
            "6301-6",
            "INR in Platelet poor plasma by Coagulation assay",
            "{INR}",
            0.8,
            1.2,
            (1.0, 0.07),
            1,
            (("warfarin", (2.5, 0.35)),),
        ),
    )
}
EGFR = Lab(
    "33914-3",
    "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood "
    "by Creatinine-based formula (MDRD)",
    "mL/min/{1.73_m2}",
    60,
    None,
    (0, 0),  # computed from the creatinine of the same draw
    0,
)


@dataclass(frozen=True, slots=True)
class Panel:
    """An ordered panel: the DiagnosticReport code and the tests it reports."""

    code: str
    display: str
    tests: tuple[str, ...]


PANELS = {
    "bmp": Panel(
        "51990-0",
        "Basic metabolic panel - Blood",
        ("2339-0", "3094-0", "2160-0", "33914-3", "17861-6", "2951-2", "2823-3", "2075-0", "2028-9"),
    ),
    "lipid": Panel(
        "57698-3", "Lipid panel with direct LDL - Serum or Plasma", ("2093-3", "2571-8", "2085-9", "18262-6")
    ),
    "cbc": Panel(
        "58410-2", "CBC panel - Blood by Automated count", ("6690-2", "789-8", "718-7", "4544-3", "777-3")
    ),
    "a1c": Panel("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", ("4548-4",)),
    "tsh": Panel("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", ("3016-3",)),
    "inr": Panel("6301-6", "INR in Platelet poor plasma by Coagulation assay", ("6301-6",)),
}

# -- medications (RxNorm clinical drugs) -------------------------------------------------------

ORAL: Term = (SNOMED, "26643006", "Oral route (qualifier value)")
INHALED: Term = (SNOMED, "447694001", "Respiratory tract route (qualifier value)")
TOPICAL: Term = (SNOMED, "6064005", "Topical route (qualifier value)")
SUBLINGUAL: Term = (SNOMED, "37839007", "Sublingual route (qualifier value)")


@dataclass(frozen=True, slots=True)
class Drug:
    """An RxNorm clinical drug and how it is usually ordered."""

    code: str
    display: str
    sig: str
    dose: tuple[float, str, str]  # value, unit, UCUM code
    frequency: int = 1
    period: float = 1
    period_unit: str = "d"
    route: Term = ORAL
    as_needed: bool = False
    days: int | None = None  # a short course; None for long-term therapy


_TAB = (1, "tablet", "{tbl}")
DRUGS = {
    "lisinopril": Drug("314076", "lisinopril 10 MG Oral Tablet", "Take 1 tablet by mouth once daily", _TAB),
    "losartan": Drug(
        "979492", "losartan potassium 50 MG Oral Tablet", "Take 1 tablet by mouth once daily", _TAB
    ),
    "hctz": Drug(
        "310798", "Hydrochlorothiazide 25 MG Oral Tablet", "Take 1 tablet by mouth every morning", _TAB
    ),
    "amlodipine": Drug("197361", "Amlodipine 5 MG Oral Tablet", "Take 1 tablet by mouth once daily", _TAB),
    "metformin": Drug(
        "860975",
        "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet",
        "Take 1 tablet by mouth once daily with the evening meal",
        _TAB,
    ),
    "simvastatin": Drug(
        "312961", "Simvastatin 20 MG Oral Tablet", "Take 1 tablet by mouth every evening", _TAB
    ),
    "atorvastatin": Drug(
        "259255", "Atorvastatin 80 MG Oral Tablet", "Take 1 tablet by mouth once daily", _TAB
    ),
    "albuterol": Drug(
        "2123111",
        "NDA020503 200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler",
        "Inhale 2 puffs every 4 hours as needed for wheezing",
        (2, "puff", "{puff}"),
        period=4,
        period_unit="h",
        route=INHALED,
        as_needed=True,
    ),
    "fluticasone": Drug(
        "895994",
        "120 ACTUAT Fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler",
        "Inhale 2 puffs twice daily",
        (2, "puff", "{puff}"),
        frequency=2,
        route=INHALED,
    ),
    "fluticasone_salmeterol": Drug(
        "896209",
        "60 ACTUAT Fluticasone propionate 0.25 MG/ACTUAT / salmeterol 0.05 MG/ACTUAT Dry Powder Inhaler",
        "Inhale 1 puff twice daily",
        (1, "puff", "{puff}"),
        frequency=2,
        route=INHALED,
    ),
    "warfarin": Drug("855332", "Warfarin Sodium 5 MG Oral Tablet", "Take 1 tablet by mouth once daily", _TAB),
    "metoprolol": Drug(
        "866924", "Metoprolol Tartrate 25 MG Oral Tablet", "Take 1 tablet by mouth twice daily", _TAB, 2
    ),
    "digoxin": Drug("197604", "Digoxin 0.125 MG Oral Tablet", "Take 1 tablet by mouth once daily", _TAB),
    "clopidogrel": Drug("309362", "Clopidogrel 75 MG Oral Tablet", "Take 1 tablet by mouth once daily", _TAB),
    "aspirin": Drug("243670", "Aspirin 81 MG Oral Tablet", "Take 1 tablet by mouth once daily", _TAB),
    "nitroglycerin": Drug(
        "705129",
        "Nitroglycerin 0.4 MG/ACTUAT Mucosal Spray",
        "Spray 1 dose under the tongue every 5 minutes as needed for chest pain",
        (1, "spray", "{spray}"),
        period=5,
        period_unit="min",
        route=SUBLINGUAL,
        as_needed=True,
    ),
    "sertraline": Drug("312938", "Sertraline 100 MG Oral Tablet", "Take 1 tablet by mouth once daily", _TAB),
    "fluoxetine": Drug(
        "310385",
        "FLUoxetine 20 MG Oral Capsule",
        "Take 1 capsule by mouth every morning",
        (1, "capsule", "{cap}"),
    ),
    "levothyroxine": Drug(
        "966222",
        "Levothyroxine Sodium 0.075 MG Oral Tablet",
        "Take 1 tablet by mouth every morning on an empty stomach",
        _TAB,
    ),
    "naproxen": Drug(
        "849574",
        "Naproxen sodium 220 MG Oral Tablet",
        "Take 1 tablet by mouth every 12 hours as needed for pain",
        _TAB,
        period=12,
        period_unit="h",
        as_needed=True,
    ),
    "ibuprofen": Drug(
        "310965",
        "Ibuprofen 200 MG Oral Tablet",
        "Take 2 tablets by mouth every 6 hours as needed for pain",
        (2, "tablet", "{tbl}"),
        period=6,
        period_unit="h",
        as_needed=True,
        days=10,
    ),
    "acetaminophen": Drug(
        "313782",
        "Acetaminophen 325 MG Oral Tablet",
        "Take 2 tablets by mouth every 6 hours as needed for pain or fever",
        (2, "tablet", "{tbl}"),
        period=6,
        period_unit="h",
        as_needed=True,
        days=7,
    ),
    "loratadine": Drug("311372", "Loratadine 10 MG Oral Tablet", "Take 1 tablet by mouth once daily", _TAB),
    "allopurinol": Drug(
        "197319", "Allopurinol 100 MG Oral Tablet", "Take 1 tablet by mouth once daily", _TAB
    ),
    "colchicine": Drug(
        "197541",
        "Colchicine 0.6 MG Oral Tablet",
        "Take 1 tablet by mouth once daily as needed for a gout flare",
        _TAB,
        as_needed=True,
    ),
    "amoxicillin_clavulanate": Drug(
        "562251",
        "Amoxicillin 250 MG / Clavulanate 125 MG Oral Tablet",
        "Take 1 tablet by mouth every 8 hours for 10 days",
        _TAB,
        period=8,
        period_unit="h",
        days=10,
    ),
    "amoxicillin_250": Drug(
        "308182",
        "Amoxicillin 250 MG Oral Capsule",
        "Take 1 capsule by mouth every 8 hours for 10 days",
        (1, "capsule", "{cap}"),
        period=8,
        period_unit="h",
        days=10,
    ),
    "amoxicillin_500": Drug(
        "308192",
        "Amoxicillin 500 MG Oral Tablet",
        "Take 1 tablet by mouth every 8 hours for 7 days",
        _TAB,
        period=8,
        period_unit="h",
        days=7,
    ),
    "penicillin_v": Drug(
        "834102",
        "Penicillin V Potassium 500 MG Oral Tablet",
        "Take 1 tablet by mouth every 12 hours for 10 days",
        _TAB,
        period=12,
        period_unit="h",
        days=10,
    ),
    "cefuroxime": Drug(
        "309097",
        "Cefuroxime 250 MG Oral Tablet",
        "Take 1 tablet by mouth every 12 hours for 10 days",
        _TAB,
        period=12,
        period_unit="h",
        days=10,
    ),
    "doxycycline": Drug(
        "1650142",
        "Doxycycline Monohydrate 100 MG Oral Tablet",
        "Take 1 tablet by mouth every 12 hours for 7 days",
        _TAB,
        period=12,
        period_unit="h",
        days=7,
    ),
    "nitrofurantoin": Drug(
        "311989",
        "Nitrofurantoin 5 MG/ML Oral Suspension",
        "Take 10 mL by mouth every 6 hours for 5 days",
        (10, "mL", "mL"),
        period=6,
        period_unit="h",
        days=5,
    ),
    "phenazopyridine": Drug(
        "1094107",
        "Phenazopyridine hydrochloride 100 MG Oral Tablet",
        "Take 1 tablet by mouth three times daily for 2 days",
        _TAB,
        frequency=3,
        days=2,
    ),
    "cough_syrup": Drug(
        "1043400",
        "Acetaminophen 21.7 MG/ML / Dextromethorphan Hydrobromide 1 MG/ML / doxylamine succinate 0.417 MG/ML "
        "Oral Solution",
        "Take 30 mL by mouth at bedtime as needed for cough",
        (30, "mL", "mL"),
        as_needed=True,
        days=7,
    ),
    "hydrocortisone_cream": Drug(
        "106258",
        "Hydrocortisone 10 MG/ML Topical Cream",
        "Apply a thin layer to the affected area twice daily for 7 days",
        (1, "application", "{application}"),
        frequency=2,
        route=TOPICAL,
        days=7,
    ),
    "oxycodone_acetaminophen": Drug(
        "1049221",
        "Acetaminophen 325 MG / oxyCODONE Hydrochloride 5 MG Oral Tablet",
        "Take 1 tablet by mouth every 6 hours as needed for severe pain",
        _TAB,
        period=6,
        period_unit="h",
        as_needed=True,
        days=3,
    ),
}
# A drug the patient is allergic to is replaced by the first alternative they tolerate.
ALTERNATIVES = {
    "amoxicillin_clavulanate": ("cefuroxime", "doxycycline"),
    "amoxicillin_250": ("cefuroxime", "doxycycline"),
    "amoxicillin_500": ("doxycycline", "cefuroxime"),
    "penicillin_v": ("cefuroxime", "doxycycline"),
    "lisinopril": ("losartan",),
    "naproxen": ("acetaminophen",),
    "ibuprofen": ("acetaminophen",),
    "aspirin": ("clopidogrel",),
}

# -- conditions (SNOMED CT) --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chronic:
    """A long-term condition: prevalence by age band (<18, 18-39, 40-64, 65+) and its care."""

    key: str
    term: Term
    prevalence: tuple[float, float, float, float]
    min_onset_age: int
    drugs: tuple[str, ...] = ()  # treatment options, the first preferred
    max_drugs: int = 1
    panels: tuple[str, ...] = ()  # follow-up monitoring
    female_factor: float = 1.0


CHRONIC = (
    Chronic(
        "hypertension",
        (SNOMED, "38341003", "Hypertensive disorder, systemic arterial (disorder)"),
        (0.0, 0.08, 0.30, 0.55),
        25,
        ("lisinopril", "hctz", "amlodipine"),
        2,
        ("bmp",),
    ),
    Chronic(
        "diabetes",
        (SNOMED, "44054006", "Diabetes mellitus type 2 (disorder)"),
        (0.0, 0.03, 0.12, 0.22),
        30,
        ("metformin",),
        1,
        ("a1c", "bmp"),
    ),
    Chronic(
        "prediabetes",
        (SNOMED, "15777000", "Prediabetes (finding)"),
        (0.0, 0.05, 0.15, 0.18),
        25,
        panels=("a1c",),
    ),
    Chronic(
        "hyperlipidemia",
        (SNOMED, "55822004", "Hyperlipidemia (disorder)"),
        (0.0, 0.06, 0.25, 0.40),
        25,
        ("simvastatin", "atorvastatin"),
        1,
        ("lipid",),
    ),
    Chronic(
        "asthma",
        (SNOMED, "195967001", "Asthma (disorder)"),
        (0.08, 0.08, 0.07, 0.06),
        2,
        ("albuterol", "fluticasone"),
        2,
    ),
    Chronic(
        "copd",
        (SNOMED, "13645005", "Chronic obstructive lung disease (disorder)"),
        (0.0, 0.005, 0.05, 0.10),
        40,
        ("fluticasone_salmeterol", "albuterol"),
        2,
    ),
    Chronic(
        "afib",
        (SNOMED, "49436004", "Atrial fibrillation (disorder)"),
        (0.0, 0.002, 0.02, 0.08),
        45,
        ("warfarin", "metoprolol", "digoxin"),
        2,
        ("inr",),
    ),
    Chronic(
        "cad",
        (SNOMED, "53741008", "Coronary arteriosclerosis (disorder)"),
        (0.0, 0.005, 0.05, 0.15),
        40,
        ("clopidogrel", "aspirin", "nitroglycerin"),
        3,
        ("lipid",),
    ),
    Chronic(
        "depression",
        (SNOMED, "35489007", "Depressive disorder (disorder)"),
        (0.03, 0.08, 0.08, 0.06),
        12,
        ("sertraline", "fluoxetine"),
        1,
        female_factor=1.6,
    ),
    Chronic(
        "anxiety",
        (SNOMED, "197480006", "Anxiety disorder (disorder)"),
        (0.03, 0.08, 0.07, 0.05),
        10,
        ("sertraline",),
        1,
        female_factor=1.5,
    ),
    Chronic(
        "osteoarthritis",
        (SNOMED, "396275006", "Osteoarthritis (disorder)"),
        (0.0, 0.02, 0.12, 0.30),
        35,
        ("naproxen", "acetaminophen"),
        1,
    ),
    Chronic(
        "hypothyroidism",
        (SNOMED, "40930008", "Hypothyroidism (disorder)"),
        (0.003, 0.015, 0.04, 0.07),
        5,
        ("levothyroxine",),
        1,
        ("tsh",),
        female_factor=2.5,
    ),
    Chronic(
        "gerd",
        (SNOMED, "235595009", "Gastroesophageal reflux disease (disorder)"),
        (0.01, 0.08, 0.12, 0.15),
        10,
    ),
    Chronic(
        "migraine",
        (SNOMED, "37796009", "Migraine (disorder)"),
        (0.02, 0.08, 0.06, 0.02),
        8,
        ("naproxen",),
        1,
        female_factor=2.0,
    ),
    Chronic(
        "ckd",
        (SNOMED, "433144002", "Chronic kidney disease stage 3 (disorder)"),
        (0.0, 0.005, 0.03, 0.10),
        40,
        panels=("bmp", "cbc"),
    ),
    Chronic(
        "allergic_rhinitis",
        (SNOMED, "446096008", "Perennial allergic rhinitis (disorder)"),
        (0.08, 0.08, 0.06, 0.04),
        3,
        ("loratadine",),
        1,
    ),
    Chronic(
        "gout",
        (SNOMED, "90560007", "Gout (disorder)"),
        (0.0, 0.01, 0.03, 0.05),
        30,
        ("allopurinol", "colchicine"),
        2,
        female_factor=0.4,
    ),
)
# Diagnosed from the measured BMI of an adult rather than drawn at random.
OBESITY: Term = (SNOMED, "414916001", "Obesity (disorder)")


@dataclass(frozen=True, slots=True)
class Acute:
    """A self-limiting problem seen at a visit of one of ``kinds``, and what is done for it."""

    key: str
    term: Term
    kinds: tuple[str, ...]
    weight: float
    ages: tuple[int, int] = (0, 120)
    drugs: tuple[tuple[str, float], ...] = ()  # (drug, chance)
    procedure: str | None = None
    fever: bool = False
    infection: bool = False
    hypoxia: bool = False
    since: date | None = None
    heals_in_days: tuple[int, int] = (7, 21)


ACUTE = (
    Acute(
        "viral_sinusitis",
        (SNOMED, "444814009", "Viral sinusitis (disorder)"),
        ("symptom", "telemedicine"),
        5,
        drugs=(("amoxicillin_clavulanate", 0.3),),
    ),
    Acute(
        "viral_pharyngitis",
        (SNOMED, "195662009", "Acute viral pharyngitis (disorder)"),
        ("symptom",),
        4,
        drugs=(("acetaminophen", 0.5),),
        procedure="throat_culture",
        fever=True,
    ),
    Acute(
        "bronchitis",
        (SNOMED, "10509002", "Acute bronchitis (disorder)"),
        ("symptom", "telemedicine", "emergency"),
        3,
        (12, 120),
        drugs=(("cough_syrup", 0.6),),
        heals_in_days=(14, 28),
    ),
    Acute(
        "strep_throat",
        (SNOMED, "43878008", "Streptococcal sore throat (disorder)"),
        ("symptom",),
        2,
        (3, 60),
        drugs=(("penicillin_v", 1.0),),
        procedure="throat_culture",
        fever=True,
        infection=True,
    ),
    Acute(
        "otitis_media",
        (SNOMED, "65363002", "Otitis media (disorder)"),
        ("symptom",),
        4,
        (0, 12),
        drugs=(("amoxicillin_250", 0.8),),
        fever=True,
    ),
    Acute(
        "uti",
        (SNOMED, "301011002", "Escherichia coli urinary tract infection (disorder)"),
        ("symptom",),
        2,
        (12, 120),
        drugs=(("nitrofurantoin", 1.0), ("phenazopyridine", 0.5)),
        infection=True,
    ),
    Acute(
        "covid19",
        (SNOMED, "840539006", "Disease caused by severe acute respiratory syndrome coronavirus 2 (disorder)"),
        ("symptom", "telemedicine", "emergency"),
        3,
        drugs=(("acetaminophen", 0.7),),
        fever=True,
        since=date(2020, 3, 1),
        heals_in_days=(10, 30),
    ),
    Acute(
        "contact_dermatitis",
        (SNOMED, "40275004", "Contact dermatitis (disorder)"),
        ("symptom", "telemedicine"),
        1,
        drugs=(("hydrocortisone_cream", 0.9),),
    ),
    Acute(
        "ankle_sprain",
        (SNOMED, "44465007", "Sprain of ankle (disorder)"),
        ("emergency", "symptom"),
        3,
        (5, 90),
        drugs=(("naproxen", 0.7),),
        heals_in_days=(14, 42),
    ),
    Acute(
        "forearm_fracture",
        (SNOMED, "65966004", "Fracture of forearm (disorder)"),
        ("emergency",),
        2,
        drugs=(("oxycodone_acetaminophen", 0.5), ("acetaminophen", 0.5)),
        heals_in_days=(42, 70),
    ),
    Acute(
        "hand_laceration",
        (SNOMED, "284549007", "Laceration of hand (disorder)"),
        ("emergency",),
        2,
        (2, 100),
        procedure="suture",
        heals_in_days=(10, 20),
    ),
    Acute(
        "concussion",
        (SNOMED, "62106007", "Concussion with no loss of consciousness (disorder)"),
        ("emergency",),
        1,
        drugs=(("acetaminophen", 0.8),),
    ),
    Acute(
        "pneumonia",
        (SNOMED, "233604007", "Pneumonia (disorder)"),
        ("inpatient", "emergency"),
        4,
        drugs=(("amoxicillin_500", 1.0),),
        procedure="chest_xray",
        fever=True,
        infection=True,
        hypoxia=True,
        heals_in_days=(14, 35),
    ),
    Acute(
        "appendicitis",
        (SNOMED, "74400008", "Appendicitis (disorder)"),
        ("inpatient",),
        2,
        (5, 70),
        drugs=(("oxycodone_acetaminophen", 0.8),),
        procedure="appendectomy",
        fever=True,
        infection=True,
        heals_in_days=(14, 30),
    ),
    Acute(
        "cholecystitis",
        (SNOMED, "65275009", "Acute cholecystitis (disorder)"),
        ("inpatient",),
        1,
        (30, 100),
        drugs=(("oxycodone_acetaminophen", 0.7),),
        procedure="cholecystectomy",
        fever=True,
        infection=True,
        heals_in_days=(14, 30),
    ),
)

# -- procedures (SNOMED CT); minutes is None for a point-in-time procedure ------------------

PROCEDURES: dict[str, tuple[Term, tuple[int, int] | None]] = {
    "medication_reconciliation": ((SNOMED, "430193006", "Medication reconciliation (procedure)"), None),
    "needs_assessment": (
        (SNOMED, "710824005", "Assessment of health and social care needs (procedure)"),
        None,
    ),
    "depression_screening": ((SNOMED, "171207006", "Depression screening (procedure)"), None),
    "mammography": ((SNOMED, "71651007", "Mammography (procedure)"), None),
    "colonoscopy": ((SNOMED, "73761001", "Colonoscopy (procedure)"), (25, 60)),
    "throat_culture": ((SNOMED, "117015009", "Throat culture (procedure)"), None),
    "spirometry": ((SNOMED, "127783003", "Spirometry (procedure)"), None),
    "ecg": ((SNOMED, "29303009", "Electrocardiographic procedure (procedure)"), None),
    "chest_xray": ((SNOMED, "399208008", "Plain chest X-ray (procedure)"), None),
    "suture": ((SNOMED, "288086009", "Suture open wound (procedure)"), (15, 45)),
    "appendectomy": ((SNOMED, "80146002", "Excision of appendix (procedure)"), (45, 120)),
    "cholecystectomy": ((SNOMED, "38102005", "Cholecystectomy (procedure)"), (60, 150)),
    "pci": ((SNOMED, "415070008", "Percutaneous coronary intervention (procedure)"), (60, 180)),
}

# -- immunizations (CVX) -----------------------------------------------------------------------

_IM = ("IM", "Injection, intramuscular")
_SC = ("SC", "Injection, subcutaneous")
_PO = ("PO", "Swallow, oral")
ROUTE_SYSTEM = THO + "v3-RouteOfAdministration"
SITE_SYSTEM = THO + "v3-ActSite"
# code -> (display, route, dose in mL)
VACCINES: dict[str, tuple[str, tuple[str, str], float]] = {
    "140": ("Influenza, seasonal, injectable, preservative free", _IM, 0.5),
    "08": ("Hep B, adolescent or pediatric", _IM, 0.5),
    "20": ("DTaP", _IM, 0.5),
    "10": ("IPV", _SC, 0.5),
    "49": ("Hib (PRP-OMP)", _IM, 0.5),
    "119": ("rotavirus, monovalent", _PO, 1.0),
    "133": ("Pneumococcal conjugate PCV 13", _IM, 0.5),
    "03": ("MMR", _SC, 0.5),
    "21": ("varicella", _SC, 0.5),
    "83": ("Hep A, ped/adol, 2 dose", _IM, 0.5),
    "115": ("Tdap", _IM, 0.5),
    "62": ("HPV, quadrivalent", _IM, 0.5),
    "114": ("meningococcal MCV4P", _IM, 0.5),
    "113": ("Td (adult) preservative free", _IM, 0.5),
    "187": ("zoster vaccine recombinant", _IM, 0.5),
    "33": ("pneumococcal polysaccharide vaccine, 23 valent", _IM, 0.5),
    "208": (
        "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 30 mcg/0.3mL dose",
        _IM,
        0.3,
    ),
    "207": (
        "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 100 mcg/0.5mL dose",
        _IM,
        0.5,
    ),
}
INJECTION_SITES = (("LA", "left arm"), ("RA", "right arm"), ("LT", "left thigh"), ("RT", "right thigh"))
COVID_VACCINES_FROM = date(2021, 1, 4)

# -- allergies ---------------------------------------------------------------------------------

MANIFESTATIONS = {
    "hives": (SNOMED, "247472004", "Wheal (finding)"),
    "rash": (SNOMED, "271807003", "Eruption of skin (disorder)"),
    "anaphylaxis": (SNOMED, "39579001", "Anaphylaxis (disorder)"),
    "angioedema": (SNOMED, "402387002", "Allergic angioedema (disorder)"),
    "cough": (SNOMED, "49727002", "Cough (finding)"),
    "dyspnea": (SNOMED, "267036007", "Dyspnea (finding)"),
    "itching": (SNOMED, "418290006", "Itching (finding)"),
    "rhinoconjunctivitis": (SNOMED, "878820003", "Rhinoconjunctivitis (disorder)"),
    "sneezing": (SNOMED, "76067001", "Sneezing (finding)"),
    "wheezing": (SNOMED, "56018004", "Wheezing (finding)"),
    "vomiting": (SNOMED, "300359004", "Finding of vomiting (finding)"),
    "abdominal_pain": (SNOMED, "21522001", "Abdominal pain (finding)"),
}


@dataclass(frozen=True, slots=True)
class Allergen:
    """A substance a patient can react to; ``avoid`` lists drugs it rules out."""

    key: str
    term: Term
    category: str
    type: str
    weight: float
    reactions: tuple[str, ...]
    avoid: tuple[str, ...] = ()


ALLERGENS = (
    Allergen(
        "peanut",
        (SNOMED, "762952008", "Peanut (substance)"),
        "food",
        "allergy",
        3,
        ("hives", "angioedema", "anaphylaxis", "vomiting"),
    ),
    Allergen(
        "tree_nut",
        (SNOMED, "442571000124108", "Tree nut (substance)"),
        "food",
        "allergy",
        2,
        ("hives", "angioedema", "anaphylaxis"),
    ),
    Allergen(
        "fish",
        (SNOMED, "735971005", "Fish (substance)"),
        "food",
        "allergy",
        1,
        ("rash", "vomiting", "dyspnea"),
    ),
    Allergen(
        "shellfish",
        (SNOMED, "735029006", "Shellfish (substance)"),
        "food",
        "allergy",
        3,
        ("hives", "angioedema", "abdominal_pain"),
    ),
    Allergen(
        "tree_pollen",
        (SNOMED, "782576004", "Tree pollen (substance)"),
        "environment",
        "allergy",
        4,
        ("sneezing",),
    ),
    Allergen(
        "grass_pollen",
        (SNOMED, "256277009", "Grass pollen (substance)"),
        "environment",
        "allergy",
        4,
        ("sneezing", "rhinoconjunctivitis"),
    ),
    Allergen(
        "dander",
        (SNOMED, "264287008", "Animal dander (substance)"),
        "environment",
        "allergy",
        4,
        ("rhinoconjunctivitis", "cough", "hives"),
    ),
    Allergen(
        "dust_mite",
        (SNOMED, "260147004", "House dust mite (organism)"),
        "environment",
        "allergy",
        3,
        ("sneezing", "wheezing"),
    ),
    Allergen(
        "mold", (SNOMED, "84489001", "Mold (organism)"), "environment", "allergy", 2, ("sneezing", "wheezing")
    ),
    Allergen(
        "bee_venom",
        (SNOMED, "288328004", "Bee venom (substance)"),
        "environment",
        "allergy",
        1,
        ("anaphylaxis", "rash"),
    ),
    Allergen(
        "latex", (SNOMED, "111088007", "Latex (substance)"), "environment", "allergy", 1, ("rash", "itching")
    ),
    Allergen(
        "penicillin",
        (RXNORM, "7984", "Penicillin V"),
        "medication",
        "allergy",
        6,
        ("hives", "rash", "anaphylaxis"),
        ("amoxicillin_clavulanate", "amoxicillin_250", "amoxicillin_500", "penicillin_v"),
    ),
    Allergen(
        "cephalosporin",
        (RXNORM, "2231", "Cephalexin"),
        "medication",
        "allergy",
        1,
        ("hives", "rash"),
        ("cefuroxime",),
    ),
    Allergen(
        "sulfa",
        (RXNORM, "10831", "Sulfamethoxazole / Trimethoprim"),
        "medication",
        "allergy",
        3,
        ("rash", "hives"),
    ),
    Allergen(
        "aspirin",
        (RXNORM, "1191", "Aspirin"),
        "medication",
        "intolerance",
        2,
        ("abdominal_pain", "hives"),
        ("aspirin",),
    ),
    Allergen(
        "ibuprofen",
        (RXNORM, "5640", "Ibuprofen"),
        "medication",
        "allergy",
        1,
        ("itching", "hives"),
        ("ibuprofen", "naproxen"),
    ),
    Allergen(
        "lisinopril",
        (RXNORM, "29046", "Lisinopril"),
        "medication",
        "intolerance",
        1,
        ("cough",),
        ("lisinopril",),
    ),
)
