"""Allergens (SNOMED CT substances, RxNorm ingredients) and the reactions they cause."""

from __future__ import annotations

from dataclasses import dataclass

from fhir.sandbox.terminology import RXNORM, SNOMED, Term

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
