"""A patient's body: how they grow, and what their vital signs and laboratory tests measure."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from fhir.sandbox.clock import DAY, TODAY, years_between
from fhir.sandbox.elements import coding
from fhir.sandbox.labs import EGFR, LABS, PANELS, Lab
from fhir.sandbox.people import Staff
from fhir.sandbox.problems import Acute, Chronic
from fhir.sandbox.record import Record
from fhir.sandbox.terminology import (
    BLOOD_PRESSURE,
    BMI,
    BODY_HEIGHT,
    BODY_TEMPERATURE,
    BODY_WEIGHT,
    DIASTOLIC,
    HEART_RATE,
    OXYGEN_SATURATION,
    PULSE_OXIMETRY,
    RESPIRATORY_RATE,
    SMOKING,
    SMOKING_STATUS,
    SYSTOLIC,
)

# Median height (cm) by whole year of age, 0-18, for boys and girls (CDC growth charts, rounded).
_HEIGHT = {
    "male": (50, 76, 87, 96, 103, 110, 116, 122, 128, 133, 138, 143, 149, 156, 164, 170, 173, 175, 176),
    "female": (49, 74, 86, 95, 102, 109, 115, 121, 127, 133, 138, 144, 151, 157, 160, 162, 163, 163, 163),
}
# Median BMI by whole year of age, 0-18.
# fmt: off
_CHILD_BMI = (
    13.4, 17.2, 16.5, 16.0, 15.7, 15.5, 15.5, 15.7, 16.0, 16.5,
    17.0, 17.6, 18.2, 18.9, 19.5, 20.1, 20.6, 21.1, 21.5,
)
# fmt: on


def _interpolate(table: tuple[float, ...], age: float) -> float:
    whole = min(int(age), len(table) - 2)
    fraction = min(age - whole, 1.0)
    return table[whole] + (table[whole + 1] - table[whole]) * fraction


def _vital_code(*terms: tuple[str, str, str], text: str | None = None) -> dict:
    return {"coding": [coding(term) for term in terms], "text": text or terms[0][2]}


class Body:
    """One patient's physiology, drawn once from their generator and followed through time."""

    def __init__(self, rng: random.Random, record: Record, birth: date, gender: str) -> None:
        self.rng = rng
        self.record = record
        self.birth = birth
        self.female = gender == "female"
        sex = gender if gender != "other" else rng.choice(("female", "male"))
        self.heights = _HEIGHT[sex]
        self.height_factor = 1 + rng.gauss(0, 0.04)
        self.adult_bmi = min(max(rng.gauss(27.5, 5.0), 17.5), 48.0)
        self.bmi_trend = rng.gauss(0, 0.25)  # per year
        self.heart_offset = rng.gauss(0, 6)
        self.pressure_offset = rng.gauss(0, 7)
        self.smoking_recorded = False

    def _size(self, age: float, when: date) -> tuple[float, float]:
        """Height (cm) and weight (kg) at ``age``, following this patient's growth and weight trend."""
        height = _interpolate(self.heights, min(age, 18.0)) * self.height_factor
        if age < 18:
            bmi = _interpolate(_CHILD_BMI, age) * (0.85 + 0.15 * self.adult_bmi / 25)
        else:
            bmi = self.adult_bmi - self.bmi_trend * years_between(when, TODAY)
        bmi += self.rng.gauss(0, 0.3)
        return round(height, 1), round(bmi * (height / 100) ** 2, 1)

    def vitals(
        self,
        kind: str,
        enc: str,
        start: datetime,
        end: datetime,
        nurse: Staff,
        age: float,
        traits: set[str],
        acute: Acute | None,
    ) -> None:
        """Measure vital signs at a visit (and daily during a stay), and smoking status once."""
        rng, record = self.rng, self.record
        when = start + timedelta(minutes=rng.randint(3, 12))
        if not self.smoking_recorded and age >= 12 and kind != "emergency":
            self._smoking_status(enc, when, age, traits)
        fever = acute is not None and acute.fever
        self._core_vitals(enc, when, nurse, age, traits, fever, acute is not None and acute.hypoxia)
        if kind != "emergency" or rng.random() < 0.5:
            height, weight = self._size(age, when.date())
            record.vital(_vital_code(BODY_WEIGHT), enc, when, nurse, weight, "kg", "kg")
            if kind != "emergency":
                record.vital(_vital_code(BODY_HEIGHT), enc, when, nurse, height, "cm", "cm")
                if age >= 2:
                    bmi = round(weight / (height / 100) ** 2, 1)
                    record.vital(_vital_code(BMI), enc, when, nurse, bmi, "kg/m2", "kg/m2")
        if kind == "inpatient":
            # A set of rounds each further day of the stay, settling as the patient recovers.
            day = when + DAY
            while day < end:
                self._core_vitals(enc, day, nurse, age, traits, fever and rng.random() < 0.3, False)
                day += DAY

    def _core_vitals(
        self,
        enc: str,
        when: datetime,
        nurse: Staff,
        age: float,
        traits: set[str],
        fever: bool,
        hypoxia: bool,
    ) -> None:
        rng, record = self.rng, self.record
        if age < 18:
            heart = (130, 115, 115, 100, 100, 100)[int(age)] if age < 6 else 88 if age < 12 else 78
            breathing = 34 if age < 1 else 28 if age < 3 else 24 if age < 6 else 20 if age < 12 else 17
        else:
            heart, breathing = 72 + self.heart_offset, 15
        heart += rng.gauss(0, 5) + (12 if fever else 0)
        record.vital(_vital_code(HEART_RATE), enc, when, nurse, round(heart), "beats/minute", "/min")
        if age >= 3:
            if age < 18:
                systolic, diastolic = 95 + 1.2 * age, 58 + 0.8 * age
            else:
                systolic = 112 + 0.5 * max(0.0, age - 30) + self.pressure_offset
                diastolic = 72 + 0.15 * max(0.0, age - 30) + self.pressure_offset / 2
                if "hypertension" in traits:
                    systolic, diastolic = systolic + 18, diastolic + 9
            record.blood_pressure(
                _vital_code(BLOOD_PRESSURE, text="Blood pressure"),
                (_vital_code(SYSTOLIC), _vital_code(DIASTOLIC)),
                enc,
                when,
                nurse,
                round(systolic + rng.gauss(0, 7)),
                round(diastolic + rng.gauss(0, 5)),
            )
        record.vital(
            _vital_code(RESPIRATORY_RATE),
            enc,
            when,
            nurse,
            round(breathing + rng.gauss(0, 1.5)),
            "breaths/minute",
            "/min",
        )
        temperature = rng.gauss(38.7, 0.5) if fever else rng.gauss(36.8, 0.25)
        record.vital(_vital_code(BODY_TEMPERATURE), enc, when, nurse, round(temperature, 1), "Cel", "Cel")
        saturation = (
            rng.gauss(91, 2) if hypoxia else rng.gauss(93, 1.5) if "copd" in traits else rng.gauss(97.8, 1)
        )
        record.vital(
            _vital_code(PULSE_OXIMETRY, OXYGEN_SATURATION, text="Oxygen saturation"),
            enc,
            when,
            nurse,
            min(100, round(saturation)),
            "%",
            "%",
        )

    def _smoking_status(self, enc: str, when: datetime, age: float, traits: set[str]) -> None:
        rng = self.rng
        if "copd" in traits:
            status = rng.choice(("former", "daily"))
        elif age < 18:
            status = "never" if rng.random() < 0.95 else "daily"
        else:
            status = rng.choices(("never", "former", "daily"), (68, 20, 12))[0]
        code = _vital_code(SMOKING_STATUS)
        self.record.smoking_status(code, SMOKING[status], enc, when)
        self.smoking_recorded = True

    def labs(
        self,
        kind: str,
        enc: str,
        start: datetime,
        age: float,
        traits: set[str],
        reason: Chronic | None,
        acute: Acute | None,
    ) -> None:
        """Order the panels this visit calls for and report their results."""
        rng = self.rng
        panels: list[str] = []
        if kind == "checkup":
            if rng.random() < (0.8 if traits & {"hyperlipidemia", "cad", "diabetes"} else 0.3):
                panels.append("lipid")
            if rng.random() < (0.8 if traits & {"hypertension", "diabetes", "ckd"} else 0.25):
                panels.append("bmp")
            if rng.random() < 0.25:
                panels.append("cbc")
            if rng.random() < (0.85 if traits & {"diabetes", "prediabetes"} else 0.08):
                panels.append("a1c")
            if "hypothyroidism" in traits and rng.random() < 0.7:
                panels.append("tsh")
        elif kind == "well_child":
            if age < 2 and rng.random() < 0.15:
                panels.append("cbc")
        elif kind == "followup" and reason:
            panels.extend(p for p in reason.panels if rng.random() < 0.8)
        elif kind == "emergency":
            panels.extend(p for p in ("cbc", "bmp") if rng.random() < 0.5)
        elif kind == "inpatient":
            panels.extend(("cbc", "bmp"))
        elif acute and acute.infection and rng.random() < 0.3:
            panels.append("cbc")
        if not panels:
            return
        drawn = start + timedelta(minutes=rng.randint(15, 40))
        for key in panels:
            panel = PANELS[key]
            results: list[tuple[Lab, float]] = []
            creatinine = 1.0
            for code in panel.tests:
                if code == EGFR.code:
                    if age < 18:
                        continue
                    # MDRD study equation: 175 x Scr^-1.154 x age^-0.203 (x 0.742 for women).
                    egfr = 175 * creatinine**-1.154 * age**-0.203 * (0.742 if self.female else 1)
                    results.append((EGFR, round(min(egfr, 150))))
                    continue
                lab = LABS[code]
                value = self._lab_value(lab, traits)
                if code == "2160-0":
                    creatinine = value
                results.append((lab, value))
            resulted = drawn + timedelta(hours=rng.randint(2, 30), minutes=rng.randint(0, 59))
            self.record.lab_report(panel, results, enc, drawn, resulted)

    def _lab_value(self, lab: Lab, traits: set[str]) -> float:
        mean, sd = next((spread for trait, spread in lab.affected if trait in traits), None) or (
            lab.female if self.female and lab.female else lab.normal
        )
        value = max(self.rng.gauss(mean, sd), mean * 0.3)
        return round(value) if lab.decimals == 0 else round(value, lab.decimals)
