"""One synthetic patient's story: conditions, a visit schedule, and what each visit leaves behind.

Everything a chart draws comes from its own ``random.Random`` seeded by (seed, patient index),
so a patient is the same whether generated alone, in a slice, or in a whole population.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

from fhir.sandbox.allergens import ALLERGENS, MANIFESTATIONS, Allergen
from fhir.sandbox.body import Body
from fhir.sandbox.clock import TODAY, partial_date, years_between
from fhir.sandbox.drugs import ALTERNATIVES, DRUGS
from fhir.sandbox.people import LABORATORY_NAME, SITES, Directory, Staff, build_patient
from fhir.sandbox.prevention import Prevention
from fhir.sandbox.problems import ACUTE, CHRONIC, OBESITY, PROCEDURES, Acute, Chronic
from fhir.sandbox.record import Record

_VISIT_RATES = (("symptom", 0.35), ("emergency", 0.09), ("telemedicine", 0.22))
_RECORDING_KINDS = ("checkup", "well_child", "followup", "symptom", "inpatient", "telemedicine")


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

        self.body = Body(rng, self.record, person.birth, person.gender)
        self.prevention = Prevention(rng, self.record, self.female)

        self.conditions: list[tuple[Chronic, date]] = self._draw_conditions()
        self.recorded: dict[str, str] = {}  # chronic key -> Condition id
        self.active: dict[str, list[tuple[str, dict]]] = {}  # chronic key -> [(drug key, request)]
        self.active_drugs: set[str] = set()
        self.allergens = self._draw_allergens()
        self.avoid = {drug for allergen in self.allergens for drug in allergen.avoid}
        self.first_visit = True

        end = TODAY - timedelta(days=10)
        start = max(
            TODAY - timedelta(days=int(rng.uniform(1.5, 5.0) * 365.25)), self.birth + timedelta(days=3)
        )
        for day, kind in self._schedule(start, end):
            self._visit(day, kind)

    def resources(self) -> list[dict]:
        """The Patient and its record, in dependency order."""
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
        if age >= 18 and self.body.adult_bmi >= 30:
            onset_age = max(18.0, age - rng.uniform(1, 15))
            chosen.append((OBESITY, self.birth + timedelta(days=int(onset_age * 365.25))))
        return chosen

    def _draw_allergens(self) -> list[Allergen]:
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
            self._perform("pci", enc, surgery, practitioner, self.recorded[reason.key])
        elif reason:
            self._follow_up(reason, enc, start, practitioner)

        age = years_between(self.birth, day)
        traits = self._traits(day)
        if acute and acute.infection:
            traits.add("infection")
        if kind != "telemedicine":
            self.body.vitals(kind, enc, start, end, practitioner, age, traits, acute)
            self.body.labs(kind, enc, start, age, traits, reason, acute)
        if kind in ("checkup", "well_child", "followup"):
            self.prevention.immunize(kind, enc, start, practitioner, age)
        if kind == "checkup":
            self.prevention.screen(enc, start, practitioner, age, bool(self.active_drugs))
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
        if key in ("asthma", "copd") and rng.random() < 0.4:
            self._perform("spirometry", enc, when + timedelta(minutes=10), practitioner, self.recorded[key])
        elif key in ("afib", "cad") and rng.random() < 0.5:
            self._perform("ecg", enc, when + timedelta(minutes=10), practitioner, self.recorded[key])

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
                self.record.medication(
                    DRUGS[drug], enc, prescribed, practitioner, cond, category, 0, DRUGS[drug].days
                )
        if acute.procedure:
            if PROCEDURES[acute.procedure][1] is None:
                begin = start + timedelta(minutes=15)
            else:
                begin = start + timedelta(minutes=rng.randint(30, 600 if kind == "inpatient" else 60))
            self._perform(acute.procedure, enc, begin, practitioner, cond)

    def _perform(self, key: str, enc: str, begin: datetime, practitioner: Staff, reason_id: str) -> None:
        term, minutes = PROCEDURES[key]
        end = begin + timedelta(minutes=self.rng.randint(*minutes)) if minutes else None
        self.record.procedure(term, enc, begin, end, practitioner, reason_id)

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
