"""Authorization overhead: the same reads and searches with a patient token and with the system token.

A seeded sample of the data set's patients gets what a real patient gets: a patient user
(``app.accounts.create_user``), a patient credential (``oauth.create_patient_credential``) and an
access token from the token endpoint (``client_secret_basic``, scope ``patient/*.rs``). Each request
is drawn once and sent both ways: with the patient's token, which the server narrows to the
patient's compartment, and with the ``system/*.cruds`` token naming the patient explicitly, so both
return the same entries. The two rows of a pair are measured in alternating chunks, so neither one
profits alone from caches the other warmed or suffers alone from a busy moment of the machine.
"""

from __future__ import annotations

import base64
import contextlib
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode, urlsplit

import orjson

from benchmarks.dataset import Pools
from benchmarks.measure import Call, Sender, Stats, run
from benchmarks.settings import AUTH_RATIO_LIMIT, HOSPITAL, Settings

KINDS = ("system", "patient")
CHUNKS = 10  # chunks per row pair: system, patient, patient, system, system, ...
GUARD_PATIENTS = 5  # patients whose searches are compared entry by entry (untimed)
GUARD_COUNT = 1000  # the server's largest page
PATIENT_SCOPE = "patient/*.rs"
PASSWORD = "benchmark-patient-password"  # >= 12 characters; these users never log in
# argon2id at its cheapest for the benchmark's own users (the real cost is ~0.3 s a hash): they
# exist only to own the patient credentials, and the database is dropped at the end.
CHEAP_ARGON2 = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


@contextlib.contextmanager
def cheap_passwords(flask_app) -> Iterator[None]:
    """Within the block (and an app context), users are created with ``CHEAP_ARGON2``."""
    with flask_app.app_context():
        saved = flask_app.config["FHIRGATE_ARGON2"]
        flask_app.config["FHIRGATE_ARGON2"] = CHEAP_ARGON2
        flask_app.extensions.pop("fhirgate_password_hasher", None)
        try:
            yield
        finally:
            flask_app.config["FHIRGATE_ARGON2"] = saved
            flask_app.extensions.pop("fhirgate_password_hasher", None)


@dataclass(frozen=True)
class Pair:
    """One drawn request as the patient sends it and as the system sends it."""

    patient: str
    patient_path: str
    system_path: str


@dataclass(frozen=True)
class AuthScenario:
    label: str  # the patient token's request
    system_label: str  # the system token's request
    draw: Callable[[random.Random], Pair]


@dataclass
class AuthGroup:
    scenario: AuthScenario
    rows: list[tuple[str, Stats, Stats]] = field(default_factory=list)  # (mode, system, patient)


def ratio(system: Stats, patient: Stats) -> float | None:
    """patient p95 / system p95 (None without figures)."""
    p95_system, p95_patient = system.percentile(95), patient.percentile(95)
    if not p95_system or p95_patient is None:
        return None
    return p95_patient / p95_system


def ratio_ok(system: Stats, patient: Stats) -> bool | None:
    value = ratio(system, patient)
    if value is None:
        return None
    return value <= AUTH_RATIO_LIMIT and not system.errors and not patient.errors


def sample(pools: Pools, settings: Settings) -> list[str]:
    rng = random.Random(f"{settings.seed}/auth/patients")  # noqa: S311
    return rng.sample(pools.patients, min(settings.auth_patients, len(pools.patients)))


def _query(resource_type: str, params: list[tuple[str, str]]) -> str:
    return f"{resource_type}?{urlencode(params)}" if params else resource_type


def scenarios(pools: Pools, patients: list[str]) -> list[AuthScenario]:
    chosen = set(patients)
    observations = [o for o in pools.observations if o[0] in chosen]
    with_conditions = [p for p in pools.with_conditions if p in chosen]

    def read(rng):
        patient = rng.choice(patients)
        return Pair(patient, f"Patient/{patient}", f"Patient/{patient}")

    def observation(rng):
        patient, code, day = rng.choice(observations)
        common = [("code", code), ("date", f"ge{day}")]
        return Pair(
            patient, _query("Observation", common), _query("Observation", [("patient", patient), *common])
        )

    def condition(rng):
        patient = rng.choice(with_conditions)
        return Pair(patient, "Condition", _query("Condition", [("patient", patient)]))

    found = [AuthScenario("GET Patient/{id}", "GET Patient/{id}", read)]
    if observations:
        found.append(
            AuthScenario("Observation?code=Y&date=geZ", "Observation?patient=X&code=Y&date=geZ", observation)
        )
    if with_conditions:
        found.append(AuthScenario("Condition", "Condition?patient=X", condition))
    return found


# -- patient tokens ----------------------------------------------------------------------------
def patient_tokens(flask_app, patients: list[str]) -> dict[str, str]:
    """A patient user, a patient credential and an access token from /oauth/token for each."""
    from app.accounts import create_user
    from oauth import create_patient_credential

    credentials = {}
    with cheap_passwords(flask_app):
        for number, patient in enumerate(patients, 1):
            user = create_user(
                f"benchmark-patient-{number}@example.org",
                PASSWORD,
                "patient",
                hospital_id=HOSPITAL,
                patient_id=patient,
            )
            new = create_patient_credential(HOSPITAL, patient, f"benchmark patient {number}", user.id)
            credentials[patient] = (new.client.client_id, new.secret)

    client = flask_app.test_client()
    tokens = {}
    for patient, (client_id, secret) in credentials.items():
        # RFC 6749 §2.3.1: client_secret_basic, id and secret form-encoded first
        pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
        response = client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {base64.b64encode(pair).decode()}"},
        )
        body = response.get_json(silent=True) or {}
        if (
            response.status_code != 200
            or body.get("patient") != patient
            or body.get("scope") != PATIENT_SCOPE
        ):
            text = response.get_data()[:300].decode("utf-8", "replace")
            raise RuntimeError(f"the token endpoint answered {response.status_code}: {text}")
        tokens[patient] = body["access_token"]
    return tokens


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("Authorization", f"Bearer {token}"),)


def warm_tokens(tokens: dict[str, str], senders: list[tuple[Sender, int]], seconds: float) -> Stats:
    """Use every token a few times per sender before timing: the first request of a token at a
    worker looks its client and ``jti`` up (then cached); the rows measure tokens in steady use."""
    stats = Stats("auth token warm-up", "in-process and socket")
    for send, repeat in senders:
        calls = [
            Call(f"Patient/{patient}", headers=_bearer(token))
            for _ in range(repeat)
            for patient, token in tokens.items()
        ]
        stats.absorb(run(Stats(stats.label, stats.mode), calls, [send], seconds))
    return stats


# -- the correctness guard (untimed) -----------------------------------------------------------
def _get(client, path: str, headers: dict) -> tuple[int, dict]:
    response = client.get(path, headers=headers)
    try:
        return response.status_code, orjson.loads(response.get_data())
    except orjson.JSONDecodeError:
        return response.status_code, {}


def _all_matches(client, path: str, headers: dict) -> tuple[int, int | None, list[str]]:
    """(status, Bundle.total, the match entries of every page) of a search."""
    separator = "&" if "?" in path else "?"
    status, bundle = _get(client, f"{path}{separator}_count={GUARD_COUNT}", headers)
    total, ids = bundle.get("total"), []
    while status == 200:
        for entry in bundle.get("entry") or []:
            if (entry.get("search") or {}).get("mode") == "match":
                ids.append(f"{entry['resource']['resourceType']}/{entry['resource']['id']}")
        following = [link["url"] for link in bundle.get("link") or [] if link.get("relation") == "next"]
        if not following:
            break
        parts = urlsplit(following[0])
        status, bundle = _get(client, f"{parts.path}?{parts.query}", headers)
    return status, total, sorted(ids)


def check(
    client, base: str, system_headers: dict, tokens: dict[str, str], pools: Pools, seed: int
) -> tuple[int, list[str]]:
    """For a few sampled patients, the patient token must see exactly what the system token sees
    naming the patient (reads, and the searches measured), and must not see another patient.
    Returns (comparisons made, warnings)."""
    rng = random.Random(f"{seed}/auth/guard")  # noqa: S311
    patients = list(tokens)[:GUARD_PATIENTS]
    observations: dict[str, list[tuple[str, str]]] = {}
    for patient, code, day in pools.observations:
        if patient in tokens:
            observations.setdefault(patient, []).append((code, day))
    checks, warnings = 0, []
    for number, patient in enumerate(patients):
        own = {**system_headers, "Authorization": f"Bearer {tokens[patient]}"}
        checks += 1
        seen = _get(client, f"{base}Patient/{patient}", own)
        system = _get(client, f"{base}Patient/{patient}", system_headers)
        if seen[0] != 200 or seen != system:
            warnings.append(
                f"Patient/{patient}: the patient token read {seen[0]}, the system token {system[0]}"
            )
        if len(patients) > 1:
            other = patients[(number + 1) % len(patients)]
            checks += 1
            status, _ = _get(client, f"{base}Patient/{other}", own)
            if status != 404:
                warnings.append(f"the token of Patient/{patient} read Patient/{other}: {status}, not 404")
        searches = [("Observation", []), ("Condition", [])]
        if observations.get(patient):
            code, day = rng.choice(observations[patient])
            searches.append(("Observation", [("code", code), ("date", f"ge{day}")]))
        for resource_type, params in searches:
            checks += 1
            as_patient = _all_matches(client, base + _query(resource_type, params), own)
            as_system = _all_matches(
                client, base + _query(resource_type, [("patient", patient), *params]), system_headers
            )
            if as_patient[0] != 200 or as_patient != as_system:
                warnings.append(
                    f"{_query(resource_type, params)} for Patient/{patient}: patient token"
                    f" {as_patient[0]}, total {as_patient[1]}, {len(as_patient[2])} entries; system token"
                    f" (patient=X) {as_system[0]}, total {as_system[1]}, {len(as_system[2])} entries"
                    + ("" if set(as_patient[2]) == set(as_system[2]) else ", different ids")
                )
    return checks, warnings


# -- timing ------------------------------------------------------------------------------------
def _call(pair: Pair, kind: str, tokens: dict[str, str]) -> Call:
    if kind == "patient":
        return Call(pair.patient_path, headers=_bearer(tokens[pair.patient]))
    return Call(pair.system_path)  # the sender's own Authorization: the system token


def measure(
    settings: Settings, scenario: AuthScenario, mode: str, senders: list[Sender], tokens: dict[str, str]
) -> tuple[Stats, Stats]:
    """(system row, patient row): the same seeded draws, in alternating chunks, each row with
    its own ``settings.seconds`` budget."""

    def draws(tag: str, count: int) -> list[Pair]:
        rng = random.Random(f"{settings.seed}/auth/{scenario.label}/{mode}/{tag}")  # noqa: S311
        return [scenario.draw(rng) for _ in range(count)]

    label = f"auth {scenario.label}"
    if settings.warmup:
        calls = [_call(pair, kind, tokens) for pair in draws("warmup", settings.warmup) for kind in KINDS]
        run(Stats(label, mode), calls, senders, settings.seconds)
    pairs = draws("measure", settings.requests)
    rows = {kind: Stats(label, f"{mode} {kind} token") for kind in KINDS}
    size = math.ceil(len(pairs) / CHUNKS)
    for number, start in enumerate(range(0, len(pairs), size)):
        chunk = pairs[start : start + size]
        for kind in KINDS if number % 2 == 0 else KINDS[::-1]:
            stats = rows[kind]
            left = settings.seconds - stats.wall_s
            if left <= 0:
                stats.stopped_early = True
                continue
            calls = [_call(pair, kind, tokens) for pair in chunk]
            stats.absorb(run(Stats(label, stats.mode), calls, senders, left))
    return rows["system"], rows["patient"]
