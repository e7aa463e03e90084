"""Prevention at routine visits: vaccines by age and season, and screening procedures."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from fhir.sandbox.people import Staff
from fhir.sandbox.problems import PROCEDURES
from fhir.sandbox.record import Record
from fhir.sandbox.vaccines import COVID_VACCINES_FROM, INJECTION_SITES

_FLU_MONTHS = (9, 10, 11, 12, 1)
_LOT_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


class Prevention:
    """What a patient has had: flu shots by season, COVID-19 doses."""

    def __init__(self, rng: random.Random, record: Record, female: bool) -> None:
        self.rng = rng
        self.record = record
        self.female = female
        self.flu_seasons: set[int] = set()
        self.covid_doses = 0

    def immunize(self, kind: str, enc: str, start: datetime, nurse: Staff, age: float) -> None:
        """Give the vaccines due at this age and season (a simplified CDC schedule)."""
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

    def screen(self, enc: str, start: datetime, practitioner: Staff, age: float, on_medication: bool) -> None:
        """Perform the screenings an adult check-up may include."""
        rng = self.rng
        if age < 18:
            return
        picks = []
        if rng.random() < 0.3:
            picks.append("depression_screening")
        if rng.random() < 0.2:
            picks.append("needs_assessment")
        if on_medication and rng.random() < 0.5:
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
