"""One synthetic patient's story: conditions, a visit schedule, and what each visit leaves behind.

Everything a chart draws comes from its own ``random.Random`` seeded by (seed, patient index),
so a patient is the same whether generated alone, in a slice, or in a whole population.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

from fhir.sandbox.clock import DAY, TODAY, partial_date, years_between
from fhir.sandbox.elements import coding
from fhir.sandbox.people import LABORATORY_NAME, SITES, Directory, Staff, build_patient
from fhir.sandbox.record import Record
from fhir.sandbox.terminology import (
    ACUTE,
    ALLERGENS,
    ALTERNATIVES,
    BLOOD_PRESSURE,
    BMI,
    BODY_HEIGHT,
    BODY_TEMPERATURE,
    BODY_WEIGHT,
    CHRONIC,
    COVID_VACCINES_FROM,
    DIASTOLIC,
    DRUGS,
    EGFR,
    HEART_RATE,
    INJECTION_SITES,
    LABS,
    MANIFESTATIONS,
    OBESITY,
    OXYGEN_SATURATION,
    PANELS,
    PROCEDURES,
    PULSE_OXIMETRY,
    RESPIRATORY_RATE,
    SMOKING,
    SMOKING_STATUS,
    SYSTOLIC,
    Acute,
    Chronic,
    Lab,
)

# Median height (cm) by whole year of age, 0-18, for boys and girls (CDC growth charts, rounded).
_HEIGHT = {
    "male": (50, 76, 87, 96, 103, 110, 116, 122, 128, 133, 138, 143, 149, 156, 164, 170, 173, 175, 176),
    "female": (49, 74, 86, 95, 102, 109, 115, 121, 127, 133, 138, 144, 151, 157, 160, 162, 163, 163, 163),
}
# Median BMI by whole year of age, 0-18.
_CHILD_BMI = (
    13.4,
    17.2,
    16.5,
    16.0,
    15.7,
    15.5,
    15.5,
    15.7,
    16.0,
    16.5,
    17.0,
    17.6,
    18.2,
    18.9,
    19.5,
    20.1,
    20.6,
    21.1,
    21.5,
)
_VISIT_RATES = (("symptom", 0.35), ("emergency", 0.09), ("telemedicine", 0.22))
_RECORDING_KINDS = ("checkup", "well_child", "followup", "symptom", "inpatient", "telemedicine")
_FLU_MONTHS = (9, 10, 11, 12, 1)
_LOT_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


def _interpolate(table: tuple[float, ...], age: float) -> float:
    whole = min(int(age), len(table) - 2)
    fraction = min(age - whole, 1.0)
    return table[whole] + (table[whole + 1] - table[whole]) * fraction


def _vital_code(*terms: tuple[str, str, str], text: str | None = None) -> dict:
    return {"coding": [coding(term) for term in terms], "text": text or terms[0][2]}


class Chart:
    """Generate one patient's record; ``resources()`` returns it in dependency order."""

    def __init__(self, seed: int, index: int, directory: Directory) -> None:
        # A per-patient generator keyed by a string: str seeds hash with SHA-512, so the
        # sequence is the same in every process (unlike hash()), and reproducible, not secret.
        self.rng = rng = random.Random(f"fhirgate-sandbox/{seed}/{index}")  # noqa: S311
        self.patient, person = build_patient(rng, seed, index, directory)
        self.person = person
        self.birth = person.birth
        self.female = person.gender == "female"
        site = SITES[person.site]
        self.zone = site.zone
        self.organization = (directory.site_ids[person.site], site.name)
        self.team = directory.staff[person.site]
        self.record = Record(person.id, site.zone, directory.laboratory_id, LABORATORY_NAME)
        self.age_now = years_between(self.birth, TODAY)

        sex = "female" if self.female else "male"
        self.heights = _HEIGHT[sex] if person.gender != "other" else _HEIGHT[rng.choice(("female", "male"))]
        self.height_factor = 1 + rng.gauss(0, 0.04)
        self.adult_bmi = min(max(rng.gauss(27.5, 5.0), 17.5), 48.0)
        self.bmi_trend = rng.gauss(0, 0.25)  # per year
        self.heart_offset = rng.gauss(0, 6)
        self.pressure_offset = rng.gauss(0, 7)

        self.conditions: list[tuple[Chronic, date]] = self._draw_conditions()
        self.recorded: dict[str, str] = {}  # chronic key -> Condition id
        self.active: dict[str, list[tuple[str, dict]]] = {}  # chronic key -> [(drug key, request)]
        self.active_drugs: set[str] = set()
        self.allergens = self._draw_allergens()
        self.avoid = {drug for allergen in self.allergens for drug in allergen.avoid}
        self.flu_seasons: set[int] = set()
        self.covid_doses = 0
        self.smoking_recorded = False
        self.first_visit = True

        end = TODAY - timedelta(days=10)
        start = max(
            TODAY - timedelta(days=int(rng.uniform(1.5, 5.0) * 365.25)), self.birth + timedelta(days=3)
        )
        for day, kind in self._schedule(start, end):
            self._visit(day, kind)

    def resources(self) -> list[dict]:
        return self.record.emit(self.patient)

    # -- who this patient is ------------------------------------------------------------------

    def _draw_conditions(self) -> list[tuple[Chronic, date]]:
        rng, age = self.rng, self.age_now
        band = 0 if age < 18 else 1 if age < 40 else 2 if age < 65 else 3
        chosen: list[tuple[Chronic, date]] = []
        for condition in CHRONIC:
            if condition.key == "prediabetes" and any(c.key == "diabetes" for c, _ in chosen):
                continue
            chance = condition.prevalence[band] * (condition.female_factor if self.female else 1.0)
            if age > condition.min_onset_age and rng.random() < chance:
                onset_age = rng.uniform(condition.min_onset_age, age)
                chosen.append((condition, self.birth + timedelta(days=int(onset_age * 365.25))))
        if age >= 18 and self.adult_bmi >= 30:
            onset_age = max(18.0, age - rng.uniform(1, 15))
            chosen.append(
                (
                    Chronic("obesity", OBESITY, (0, 0, 0, 0), 18),
                    self.birth + timedelta(days=int(onset_age * 365.25)),
                )
            )
        return chosen

    def _draw_allergens(self) -> list:
        rng = self.rng
        count = rng.choices((0, 1, 2, 3), (60, 27, 9, 4))[0]
        pool = list(ALLERGENS)
        chosen = []
        for _ in range(count):
            pick = rng.choices(pool, [a.weight for a in pool])[0]
            pool.remove(pick)
            chosen.append(pick)
        return chosen

    def _traits(self, day: date) -> set[str]:
        traits = {condition.key for condition, onset in self.conditions if onset <= day}
        if "warfarin" in self.active_drugs:
            traits.add("warfarin")
        return traits

    # -- when they come in --------------------------------------------------------------------

    def _schedule(self, start: date, end: date) -> list[tuple[date, str]]:
        rng = self.rng
        visits = []
        day = start + timedelta(days=rng.randint(0, 45))
        first = True
        while day < end:
            age = years_between(self.birth, day)
            if first or rng.random() < 0.85:
                visits.append((day, "well_child" if age < 18 else "checkup"))
            first = False
            step = 90 if age < 1 else 180 if age < 3 else 365
            day += timedelta(days=step + rng.randint(-step // 8, step // 8))
        elderly = self.age_now >= 65
        rates = (
            ("followup", min(0.35 * len(self.conditions), 1.5)),
            ("inpatient", 0.06 if elderly else 0.02),
            *_VISIT_RATES,
        )
        for kind, rate in rates:
            if rate <= 0:
                continue
            day = start + timedelta(days=int(rng.expovariate(rate) * 365.25))
            while day < end:
                visits.append((day, kind))
                day += timedelta(days=1 + int(rng.expovariate(rate) * 365.25))
        visits.sort()
        return visits

    def _timing(self, kind: str, day: date) -> tuple[datetime, datetime]:
        rng = self.rng
        if kind == "inpatient" or kind == "emergency":
            start = datetime.combine(day, time(rng.randint(0, 23), rng.randint(0, 59)))
            minutes = (
                rng.randint(1, 5) * 1440 + rng.randint(0, 720)
                if kind == "inpatient"
                else rng.randint(120, 480)
            )
        elif kind == "telemedicine":
            start = datetime.combine(day, time(rng.randint(9, 18), rng.choice((0, 20, 40))))
            minutes = rng.randint(10, 30)
        else:
            start = datetime.combine(day, time(rng.randint(8, 16), rng.choice((0, 15, 30, 45))))
            minutes = rng.randint(20, 60)
        return start, start + timedelta(minutes=minutes)

    # -- what happens at a visit --------------------------------------------------------------

    def _visit(self, day: date, kind: str) -> None:
        rng = self.rng
        known = [c for c, onset in self.conditions if c.key in self.recorded and onset <= day]
        reason: Chronic | None = None
        acute: Acute | None = None
        if kind == "followup":
            if not known:
                return
            reason = rng.choice(known)
        elif kind == "inpatient" and any(c.key == "cad" for c in known) and rng.random() < 0.35:
            reason = next(c for c in known if c.key == "cad")
        elif kind == "telemedicine" and known and rng.random() < 0.4:
            reason = rng.choice(known)
        elif kind in ("symptom", "emergency", "inpatient", "telemedicine"):
            acute = self._pick_acute(kind, day)

        start, end = self._timing(kind, day)
        if kind in ("inpatient", "emergency"):
            others = [s for s in self.team if s != self.person.pcp]
            practitioner = rng.choice(others or self.team)
        else:
            practitioner = self.person.pcp if rng.random() < 0.85 else rng.choice(self.team)
        reason_term = acute.term if acute else reason.term if reason else None
        enc = self.record.encounter(kind, start, end, practitioner, self.organization, reason_term)

        if self.first_visit:
            self._record_allergies(enc, start, practitioner)
        if kind in _RECORDING_KINDS:
            self._record_conditions(day, enc, start, practitioner)
        if acute:
            self._treat_acute(acute, kind, enc, start, end, practitioner)
        if reason and kind == "inpatient":
            surgery = start + timedelta(hours=rng.randint(2, 12))
            term, minutes = PROCEDURES["pci"]
            assert minutes is not None
            surgery_end = surgery + timedelta(minutes=rng.randint(*minutes))
            self.record.procedure(term, enc, surgery, surgery_end, practitioner, self.recorded[reason.key])
        elif reason:
            self._follow_up(reason, enc, start, practitioner)

        age = years_between(self.birth, day)
        traits = self._traits(day)
        if acute and acute.infection:
            traits.add("infection")
        if kind != "telemedicine":
            self._vitals(kind, enc, start, end, practitioner, age, traits, acute)
            self._labs(kind, enc, start, age, traits, reason, acute)
        if kind in ("checkup", "well_child", "followup"):
            self._immunize(kind, enc, start, practitioner, age)
        if kind == "checkup":
            self._screen(enc, start, practitioner, age)
        self.first_visit = False

    def _pick_acute(self, kind: str, day: date) -> Acute | None:
        age = years_between(self.birth, day)
        eligible = [
            a
            for a in ACUTE
            if kind in a.kinds and a.ages[0] <= age <= a.ages[1] and (a.since is None or day >= a.since)
        ]
        if not eligible:
            return None
        weights = [a.weight * (3 if a.key == "uti" and self.female else 1) for a in eligible]
        return self.rng.choices(eligible, weights)[0]

    def _tolerated(self, drug: str) -> str | None:
        if drug not in self.avoid:
            return drug
        return next((alt for alt in ALTERNATIVES.get(drug, ()) if alt not in self.avoid), None)

    def _record_conditions(self, day: date, enc: str, when: datetime, practitioner: Staff) -> None:
        rng = self.rng
        for condition, onset in self.conditions:
            if condition.key in self.recorded or onset > day:
                continue
            if onset < day - timedelta(days=60):
                # Known before this record began: remembered to the year or month, sometimes the day.
                onset_text = partial_date(onset, rng.choices((1, 2, 3), (25, 50, 25))[0])
            else:
                onset_text = onset.isoformat()
            cond = self.record.condition(
                condition.term, "problem-list-item", enc, when, practitioner, onset_text
            )
            self.recorded[condition.key] = cond
            self._start_treatment(condition, cond, enc, when, practitioner)

    def _start_treatment(
        self, condition: Chronic, cond: str, enc: str, when: datetime, practitioner: Staff
    ) -> None:
        rng = self.rng
        if not condition.drugs:
            return
        count = rng.randint(1, min(condition.max_drugs, len(condition.drugs)))
        for option in rng.sample(condition.drugs, count):
            drug = self._tolerated(option)
            if drug is None or drug in self.active_drugs:
                continue
            request = self.record.medication(
                DRUGS[drug], enc, when, practitioner, cond, "community", rng.randint(1, 5)
            )
            self.active.setdefault(condition.key, []).append((drug, request))
            self.active_drugs.add(drug)

    def _follow_up(self, condition: Chronic, enc: str, when: datetime, practitioner: Staff) -> None:
        """Renew some of the condition's prescriptions; the old request is then completed."""
        rng = self.rng
        renewed = []
        for drug, request in self.active.get(condition.key, []):
            if rng.random() < 0.6:
                request["status"] = "completed"
                request = self.record.medication(
                    DRUGS[drug],
                    enc,
                    when,
                    practitioner,
                    self.recorded[condition.key],
                    "community",
                    rng.randint(1, 5),
                    prior_id=request["id"],
                )
            renewed.append((drug, request))
        if renewed:
            self.active[condition.key] = renewed
        key = condition.key
        term, minutes = None, None
        if key in ("asthma", "copd") and rng.random() < 0.4:
            term, minutes = PROCEDURES["spirometry"]
        elif key in ("afib", "cad") and rng.random() < 0.5:
            term, minutes = PROCEDURES["ecg"]
        if term:
            self.record.procedure(
                term, enc, when + timedelta(minutes=10), None, practitioner, self.recorded[key]
            )

    def _treat_acute(
        self, acute: Acute, kind: str, enc: str, start: datetime, end: datetime, practitioner: Staff
    ) -> None:
        rng = self.rng
        onset = start - timedelta(days=rng.randint(0, 5), hours=rng.randint(0, 12))
        healed = start + timedelta(days=rng.randint(*acute.heals_in_days))
        abatement = self.zone.stamp(healed) if healed.date() < TODAY else None
        verification = "provisional" if kind == "telemedicine" and rng.random() < 0.3 else "confirmed"
        cond = self.record.condition(
            acute.term,
            "encounter-diagnosis",
            enc,
            start,
            practitioner,
            self.zone.stamp(onset),
            abatement,
            verification,
        )
        category = "discharge" if kind == "inpatient" else "outpatient"
        prescribed = end if kind == "inpatient" else start + timedelta(minutes=10)
        for option, chance in acute.drugs:
            drug = self._tolerated(option)
            if drug is not None and rng.random() < chance:
                self.record.medication(DRUGS[drug], enc, prescribed, practitioner, cond, category, 0)
        if acute.procedure:
            term, minutes = PROCEDURES[acute.procedure]
            if minutes is None:
                self.record.procedure(term, enc, start + timedelta(minutes=15), None, practitioner, cond)
            else:
                begin = start + timedelta(minutes=rng.randint(30, 600 if kind == "inpatient" else 60))
                self.record.procedure(
                    term, enc, begin, begin + timedelta(minutes=rng.randint(*minutes)), practitioner, cond
                )

    def _record_allergies(self, enc: str, when: datetime, practitioner: Staff) -> None:
        rng = self.rng
        age = years_between(self.birth, when.date())
        for allergen in self.allergens:
            signs = rng.sample(allergen.reactions, rng.randint(1, min(2, len(allergen.reactions))))
            severe = "anaphylaxis" in signs
            reactions = [
                (
                    MANIFESTATIONS[sign],
                    "severe" if sign == "anaphylaxis" else rng.choice(("mild", "moderate")),
                )
                for sign in signs
            ]
            if severe:
                criticality = "high"
            else:
                criticality = rng.choices(("low", "high", "unable-to-assess"), (75, 15, 10))[0]
            onset = None
            if rng.random() < 0.7:
                onset_day = self.birth + timedelta(days=int(rng.uniform(0, age) * 365.25))
                onset = partial_date(onset_day, rng.choice((1, 2)))
            verification = "confirmed" if rng.random() < 0.85 else "unconfirmed"
            self.record.allergy(
                allergen.term,
                allergen.category,
                allergen.type,
                criticality,
                reactions,
                enc,
                when,
                practitioner,
                onset,
                verification,
            )

    # -- measurements -------------------------------------------------------------------------

    def _body(self, age: float, when: date) -> tuple[float, float]:
        """Height (cm) and weight (kg) at ``age``, following this patient's growth and weight trend."""
        height = _interpolate(self.heights, min(age, 18.0)) * self.height_factor
        if age < 18:
            bmi = _interpolate(_CHILD_BMI, age) * (0.85 + 0.15 * self.adult_bmi / 25)
        else:
            bmi = self.adult_bmi + self.bmi_trend * years_between(when, TODAY) * -1
        bmi += self.rng.gauss(0, 0.3)
        return round(height, 1), round(bmi * (height / 100) ** 2, 1)

    def _vitals(
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
        rng, record = self.rng, self.record
        when = start + timedelta(minutes=rng.randint(3, 12))
        if not self.smoking_recorded and age >= 12 and kind != "emergency":
            self._smoking_status(enc, when, age, traits)
        fever = acute is not None and acute.fever
        self._core_vitals(enc, when, nurse, age, traits, fever, acute is not None and acute.hypoxia)
        if kind != "emergency" or rng.random() < 0.5:
            height, weight = self._body(age, when.date())
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
            heart = (130, 115, 100, 100, 100, 88)[min(int(age), 5)] if age < 6 else 88 if age < 12 else 78
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

    def _labs(
        self,
        kind: str,
        enc: str,
        start: datetime,
        age: float,
        traits: set[str],
        reason: Chronic | None,
        acute: Acute | None,
    ) -> None:
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

    # -- prevention ---------------------------------------------------------------------------

    def _immunize(self, kind: str, enc: str, start: datetime, nurse: Staff, age: float) -> None:
        rng = self.rng
        day = start.date()
        vaccines: list[str] = []
        if kind == "well_child":
            if age < 2:
                pool = ("08", "20", "10", "49", "133") + (("119",) if age < 0.7 else ())
                vaccines.extend(rng.sample(pool, rng.randint(1, 3)))
            elif age < 7:
                vaccines.extend(rng.sample(("20", "10", "03", "21", "83"), rng.randint(0, 2)))
            elif age >= 11:
                vaccines.extend(rng.sample(("115", "62", "114"), rng.randint(0, 2)))
        elif kind == "checkup":
            if rng.random() < 0.06:
                vaccines.append(rng.choice(("113", "115")))
            if age >= 50 and rng.random() < 0.15:
                vaccines.append("187")
            if age >= 65 and rng.random() < 0.15:
                vaccines.append(rng.choice(("133", "33")))
        season = day.year if day.month >= 9 else day.year - 1
        if day.month in _FLU_MONTHS and age >= 0.5 and season not in self.flu_seasons and rng.random() < 0.6:
            self.flu_seasons.add(season)
            vaccines.append("140")
        if day >= COVID_VACCINES_FROM and age >= 12 and self.covid_doses < 4 and rng.random() < 0.2:
            self.covid_doses += 1
            vaccines.append(rng.choice(("208", "207")))
        for n, cvx in enumerate(vaccines):
            when = start + timedelta(minutes=20 + 3 * n)
            lot = f"{rng.choice(_LOT_LETTERS)}{rng.choice(_LOT_LETTERS)}{rng.randint(1000, 9999)}"
            site = INJECTION_SITES[rng.randrange(2, 4) if age < 3 else rng.randrange(0, 2)]
            self.record.immunization(cvx, enc, when, nurse, lot, site)

    def _screen(self, enc: str, start: datetime, practitioner: Staff, age: float) -> None:
        rng = self.rng
        if age < 18:
            return
        picks = []
        if rng.random() < 0.3:
            picks.append("depression_screening")
        if rng.random() < 0.2:
            picks.append("needs_assessment")
        if self.active_drugs and rng.random() < 0.5:
            picks.append("medication_reconciliation")
        if self.female and 50 <= age < 75 and rng.random() < 0.3:
            picks.append("mammography")
        if 50 <= age < 76 and rng.random() < 0.05:
            picks.append("colonoscopy")
        for n, key in enumerate(picks):
            term, minutes = PROCEDURES[key]
            begin = start + timedelta(minutes=5 + 5 * n)
            end = begin + timedelta(minutes=rng.randint(*minutes)) if minutes else None
            self.record.procedure(term, enc, begin, end, practitioner)
