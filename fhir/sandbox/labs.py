"""Laboratory tests (LOINC, UCUM units) and the panels a DiagnosticReport groups them in."""

from __future__ import annotations

from dataclasses import dataclass


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
