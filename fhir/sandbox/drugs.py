"""Medications: RxNorm clinical drugs, how each is usually ordered, and substitutes for allergies."""

from __future__ import annotations

from dataclasses import dataclass

from fhir.sandbox.terminology import SNOMED, Term

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
    days: int = 10  # the usual course when prescribed for an acute problem


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
