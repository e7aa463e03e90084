"""The sandbox's people and places: the hospital and its sites, practitioners, patients.

The shared set (Organizations, Practitioners) depends on the seed alone; a patient depends on
the seed and its index, through the patient's own random generator.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from fhir.sandbox.clock import ARIZONA, CENTRAL, EASTERN, PACIFIC, TODAY, Zone
from fhir.sandbox.elements import concept, reference
from fhir.sandbox.names import ORIGIN_WEIGHTS, ORIGINS, STREET_SUFFIXES, STREETS, Origin, ascii_fold
from fhir.sandbox.terminology import (
    BCP47,
    DOCTOR_OF_MEDICINE,
    DOCTOR_OF_OSTEOPATHY,
    HEALTHCARE_PROVIDER,
    MARITAL_STATUS,
    MRN_TYPE,
    NEXT_OF_KIN,
    NPI,
    OTHER_ORGANIZATION,
)

MRN_SYSTEM = "https://fhirgate.example.org/sandbox/sid/mrn"
EMAIL_DOMAIN = "sandbox-health.example"


@dataclass(frozen=True, slots=True)
class Site:
    """A place of care: where its patients live, its clock, its phone area code."""

    name: str
    line: str
    city: str
    state: str
    postal_code: str
    zone: Zone
    area_code: str
    weight: float
    towns: tuple[tuple[str, tuple[str, ...]], ...]  # (city, postal codes) patients live in


SITES = (
    Site(
        "Sandbox General Hospital",
        "1200 Harborview Avenue",
        "Boston",
        "MA",
        "02114",
        EASTERN,
        "617",
        55,
        (
            ("Boston", ("02108", "02115", "02118", "02130")),
            ("Cambridge", ("02138", "02139", "02141")),
            ("Somerville", ("02143", "02144")),
            ("Quincy", ("02169", "02170")),
            ("Newton", ("02458", "02459")),
            ("Brookline", ("02445", "02446")),
        ),
    ),
    Site(
        "Sandbox Lakeside Medical Center",
        "400 North Shore Drive",
        "Chicago",
        "IL",
        "60611",
        CENTRAL,
        "312",
        15,
        (
            ("Chicago", ("60614", "60622", "60647")),
            ("Evanston", ("60201", "60202")),
            ("Oak Park", ("60301", "60302")),
        ),
    ),
    Site(
        "Sandbox Desert Medical Center",
        "2500 East Camelback Road",
        "Phoenix",
        "AZ",
        "85016",
        ARIZONA,
        "602",
        15,
        (
            ("Phoenix", ("85004", "85016", "85021")),
            ("Tempe", ("85281", "85282")),
            ("Mesa", ("85201", "85203")),
        ),
    ),
    Site(
        "Sandbox Harbor Medical Center",
        "900 Terry Avenue",
        "Seattle",
        "WA",
        "98104",
        PACIFIC,
        "206",
        15,
        (
            ("Seattle", ("98103", "98105", "98122")),
            ("Bellevue", ("98004", "98005")),
            ("Tacoma", ("98403", "98405")),
        ),
    ),
)
SITE_WEIGHTS = tuple(site.weight for site in SITES)
LABORATORY_NAME = "Sandbox Reference Laboratory"
PRACTITIONERS_PER_SITE = (4, 2, 2, 2)


@dataclass(frozen=True, slots=True)
class Staff:
    """A practitioner as the charts refer to them."""

    id: str
    display: str

    def ref(self) -> dict[str, str]:
        return reference("Practitioner", self.id, self.display)


@dataclass(slots=True)
class Directory:
    """The shared set: Organizations (hospital first) and Practitioners, with who works where."""

    organizations: list[dict]
    practitioners: list[dict]
    site_ids: list[str]
    laboratory_id: str
    staff: list[list[Staff]]  # per site

    @property
    def hospital_id(self) -> str:
        return self.site_ids[0]


def npi(rng: random.Random) -> str:
    """A 10-digit NPI with a valid Luhn check digit over the ``80840`` prefix (CMS NPI standard)."""
    body = str(rng.randint(1, 2)) + "".join(str(rng.randint(0, 9)) for _ in range(8))
    total = 0
    for position, char in enumerate(reversed("80840" + body)):
        digit = int(char)
        if position % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return body + str(-total % 10)


def phone(rng: random.Random, area_code: str) -> str:
    """A number in the 555-01xx block, which North American numbering reserves for fiction."""
    return f"+1 {area_code}-555-01{rng.randint(0, 99):02d}"


def _address(site: Site, use: str) -> dict:
    return {
        "use": use,
        "type": "physical",
        "line": [site.line],
        "city": site.city,
        "state": site.state,
        "postalCode": site.postal_code,
        "country": "US",
    }


def build_directory(seed: int, rng: random.Random) -> Directory:
    """Build the Organizations and Practitioners every patient of ``seed`` refers to."""
    organizations = []
    site_ids = []
    for n, site in enumerate(SITES):
        org_id = f"sb{seed}-org{n}"
        site_ids.append(org_id)
        org = {
            "resourceType": "Organization",
            "id": org_id,
            "identifier": [{"system": NPI, "value": npi(rng)}],
            "active": True,
            "type": [concept(HEALTHCARE_PROVIDER)],
            "name": site.name,
            "telecom": [{"system": "phone", "value": phone(rng, site.area_code), "use": "work"}],
            "address": [_address(site, "work")],
        }
        if n:
            org["partOf"] = reference("Organization", site_ids[0], SITES[0].name)
        organizations.append(org)
    laboratory_id = f"sb{seed}-org{len(SITES)}"
    organizations.append(
        {
            "resourceType": "Organization",
            "id": laboratory_id,
            "identifier": [{"system": NPI, "value": npi(rng)}],
            "active": True,
            "type": [concept(OTHER_ORGANIZATION, "Clinical laboratory")],
            "name": LABORATORY_NAME,
            "telecom": [{"system": "phone", "value": phone(rng, SITES[0].area_code), "use": "work"}],
            "address": [_address(SITES[0], "work")],
            "partOf": reference("Organization", site_ids[0], SITES[0].name),
        }
    )

    practitioners = []
    staff: list[list[Staff]] = []
    for site, count in zip(SITES, PRACTITIONERS_PER_SITE, strict=True):
        team = []
        for _ in range(count):
            prac_id = f"sb{seed}-prac{len(practitioners)}"
            gender = rng.choice(("female", "male"))
            origin = rng.choices(ORIGINS, ORIGIN_WEIGHTS)[0]
            given = rng.choice(origin.female if gender == "female" else origin.male)
            family = rng.choice(origin.family)
            degree = DOCTOR_OF_MEDICINE if rng.random() < 0.85 else DOCTOR_OF_OSTEOPATHY
            practitioners.append(
                {
                    "resourceType": "Practitioner",
                    "id": prac_id,
                    "identifier": [{"system": NPI, "value": npi(rng)}],
                    "active": True,
                    "name": [
                        {
                            "use": "official",
                            "family": family,
                            "given": [given],
                            "prefix": ["Dr."],
                            "suffix": [degree[1]],
                        }
                    ],
                    "telecom": [
                        {"system": "phone", "value": phone(rng, site.area_code), "use": "work"},
                        {
                            "system": "email",
                            "value": f"{ascii_fold(given)}.{ascii_fold(family)}@{EMAIL_DOMAIN}",
                            "use": "work",
                        },
                    ],
                    "address": [_address(site, "work")],
                    "gender": gender,
                    "qualification": [{"code": concept(degree, degree[1])}],
                }
            )
            team.append(Staff(prac_id, f"Dr. {given} {family}"))
        staff.append(team)
    return Directory(organizations, practitioners, site_ids, laboratory_id, staff)


@dataclass(slots=True)
class Person:
    """What a chart needs to know about its patient."""

    id: str
    name: str
    gender: str
    birth: date
    site: int
    pcp: Staff
    origin: Origin


def _age_years(rng: random.Random) -> int:
    band = rng.choices(((0, 17), (18, 39), (40, 64), (65, 95)), (20, 26, 32, 22))[0]
    return rng.randint(*band)


def build_patient(rng: random.Random, seed: int, index: int, directory: Directory) -> tuple[dict, Person]:
    """Build one Patient resource and the facts its chart is generated from."""
    pid = f"sb{seed}-p{index}"
    site_index = rng.choices(range(len(SITES)), SITE_WEIGHTS)[0]
    site = SITES[site_index]
    roll = rng.random()
    gender = "female" if roll < 0.505 else "male" if roll < 0.995 else "other"
    birth = TODAY - timedelta(days=_age_years(rng) * 365 + rng.randint(0, 364))
    age = (TODAY - birth).days // 365
    origin = rng.choices(ORIGINS, ORIGIN_WEIGHTS)[0]
    first_names = (
        origin.female
        if gender == "female"
        else origin.male
        if gender == "male"
        else origin.female + origin.male
    )
    given = [rng.choice(first_names)]
    if rng.random() < 0.35:
        given.append(rng.choice(first_names))
    family = rng.choice(origin.family)
    town, postal_codes = rng.choice(site.towns)
    line = [f"{rng.randint(1, 9999)} {rng.choice(STREETS)} {rng.choice(STREET_SUFFIXES)}"]
    if rng.random() < 0.3:
        line.append(f"Apt {rng.randint(1, 40)}{rng.choice('ABCD')}")
    pcp = rng.choice(directory.staff[site_index])

    name: dict = {"use": "official", "family": family, "given": given}
    if age >= 18:
        name["prefix"] = ["Ms." if gender == "female" else "Mr." if gender == "male" else "Mx."]
    telecom = [
        {"system": "phone", "value": phone(rng, site.area_code), "use": rng.choice(("home", "mobile"))}
    ]
    if age >= 16 and rng.random() < 0.7:
        email = f"{ascii_fold(given[0])}.{ascii_fold(family)}{rng.randint(1, 99)}@{EMAIL_DOMAIN}"
        telecom.append({"system": "email", "value": email, "use": "home"})
    patient: dict = {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [
            {
                "use": "usual",
                "type": concept(MRN_TYPE),
                "system": MRN_SYSTEM,
                "value": f"SB{seed}-{index + 1:07d}",
                "assigner": reference("Organization", directory.hospital_id, SITES[0].name),
            }
        ],
        "active": True,
        "name": [name],
        "telecom": telecom,
        "gender": gender,
        "birthDate": birth.isoformat(),
        "address": [
            {
                "use": "home",
                "type": "both",
                "line": line,
                "city": town,
                "state": site.state,
                "postalCode": rng.choice(postal_codes),
                "country": "US",
            }
        ],
    }
    if age >= 18:
        status = rng.choices("MSDW", (50, 30, 12, 8 if age < 65 else 25))[0]
        patient["maritalStatus"] = concept(MARITAL_STATUS[status])
    else:
        parent = rng.choice(origin.female + origin.male)
        patient["contact"] = [
            {
                "relationship": [concept(NEXT_OF_KIN)],
                "name": {"use": "official", "family": family, "given": [parent]},
                "telecom": [{"system": "phone", "value": phone(rng, site.area_code), "use": "mobile"}],
            }
        ]
    language = [origin.language]
    if origin.language[0] != "en-US" and rng.random() < 0.5:
        language.append(("en-US", "English (United States)"))
    patient["communication"] = [
        {"language": concept((BCP47, tag, display)), "preferred": n == 0}
        for n, (tag, display) in enumerate(language)
    ]
    patient["generalPractitioner"] = [pcp.ref()]
    patient["managingOrganization"] = reference("Organization", directory.site_ids[site_index], site.name)
    display = f"{' '.join(given)} {family}"
    return patient, Person(pid, display, gender, birth, site_index, pcp, origin)
