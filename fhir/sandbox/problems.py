"""Health problems (SNOMED CT): long-term conditions, acute problems, and the procedures they call for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from fhir.sandbox.terminology import SNOMED, Term


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
# Diagnosed from an adult's BMI rather than drawn at random, hence no prevalence.
OBESITY = Chronic("obesity", (SNOMED, "414916001", "Obesity (disorder)"), (0, 0, 0, 0), 18)


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
