"""Fixtures: an app on SQLite (or PostgreSQL via TEST_DATABASE_URL), clients, factories.

The schema is built once per session by the Alembic migrations, as production does, and
every table is emptied after each test.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

import pytest
from flask.testing import FlaskClient
from sqlalchemy import MetaData, text

from app import create_app
from app.accounts import create_hospital, create_user
from app.extensions import db, limiter
from app.integrations.gateway import init_gateway
from fhir.fair_share import init_fair_share
from oauth import keyring
from oauth.validity import ValidityCache

PASSWORD = "correct horse battery staple"
# Authlib allows plain http only on loopback; production requires https.
BASE_URL = "http://localhost"


def database_url(tmp_path_factory) -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


def _drop_everything() -> None:
    metadata = MetaData()
    metadata.reflect(bind=db.engine)
    metadata.drop_all(bind=db.engine)


def app_config(database_uri: str) -> dict:
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_uri,
        "FHIRGATE_BASE_URL": BASE_URL,
        # Cheap argon2id parameters: the tests log in hundreds of times.
        "FHIRGATE_ARGON2": {"time_cost": 1, "memory_cost": 1024, "parallelism": 1},
        "RATELIMIT_STORAGE_URI": "fhirgate-memory://",
        "REDIS_URL": None,  # failed logins in the database; tests that want Redis say so
        "FHIRGATE_TOKEN_RATE_LIMIT": "100000/minute",
        "FHIRGATE_AUTH_FAILURE_LIMIT": "100000/minute",
        "FHIRGATE_LOGIN_FAILURE_LIMIT": "100000/minute",
        "FHIRGATE_FHIR_CLIENT_LIMIT": "1000000/minute",
        "FHIRGATE_FHIR_HOSPITAL_LIMIT": "1000000/minute",
        # The suite's threads search in parallel through one app: tests/test_lanes.py sets one slot.
        "FHIRGATE_HEAVY_SLOTS": 64,
        # A search the fast path answers must not go to the view because the suite's other
        # threads and processes slowed it past production's 50 ms (tests/fhir/test_search_fast_path.py).
        "FHIRGATE_QUICK_SEARCH_MS": 500,
    }


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    instance = tmp_path_factory.mktemp("instance")
    app = create_app(app_config(database_url(tmp_path_factory)), instance_path=instance)
    with app.app_context():
        _drop_everything()
        from flask_migrate import upgrade

        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_tables(app):
    yield
    app.extensions["fhirgate_audit"].flush()
    with app.app_context():
        db.session.rollback()
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        keyring().invalidate()
        app.extensions["fhirgate_validity"] = ValidityCache()
        init_gateway(app)  # which hospitals are connected: the epoch starts again with the tables
        app.extensions.pop("fhirgate_known_hospitals", None)  # the tables were emptied
        init_fair_share(app)  # empty buckets, no hospital's limits remembered
    app.extensions["fhirgate_direct_reads"].wake()  # a test's broken connection rests no other
    app.extensions["fhirgate_direct_searches"].wake()
    limiter.reset()


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


@pytest.fixture
def client(app) -> FlaskClient:
    return app.test_client()


def basic_auth(client_id: str, secret: str) -> dict:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@dataclass
class Credential:
    key: str
    secret: str | None  # None for a client registered with public keys
    body: dict


class Factories:
    """Makes hospitals, users, logged-in clients and credentials through the real API."""

    def __init__(self, app):
        self.app = app
        self._users = 0

    def hospital(self, hospital_id: str = "general", name: str | None = None) -> str:
        with self.app.app_context():
            create_hospital(hospital_id, name or hospital_id.title())
        return hospital_id

    def patient(self, hospital: str, patient_id: str = "p1", family: str = "Doe") -> str:
        """A Patient in the hospital's FHIR store, with the id given."""
        from fhir.storage.sql import SqlRepository

        with self.app.app_context():
            resource = {"resourceType": "Patient", "id": patient_id, "name": [{"family": family}]}
            SqlRepository(db.session, hospital).update("Patient", patient_id, resource)
            db.session.commit()
        return patient_id

    def user(self, role: str, hospital: str | None = None, patient: str | None = None) -> str:
        self._users += 1
        email = f"{role}{self._users}@example.org"
        with self.app.app_context():
            create_user(email, PASSWORD, role, hospital_id=hospital, patient_id=patient)
        return email

    def login(self, email: str) -> FlaskClient:
        client = self.app.test_client()
        response = client.post("/api/session", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.get_json()
        return client

    def as_role(self, role: str, hospital: str | None = None, patient: str | None = None) -> FlaskClient:
        return self.login(self.user(role, hospital, patient))

    def api_key(self, hospital: str, permissions=("system/Patient.rs",), **extra) -> Credential:
        admin = self.as_role("hospital-admin", hospital)
        response = admin.post(
            f"/api/hospitals/{hospital}/api-keys",
            json={"name": "CRM", "permissions": list(permissions), **extra},
        )
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        return Credential(body["key"], body.get("secret"), body)

    def patient_credential(self, hospital: str, patient: str = "p1") -> Credential:
        patient_client = self.as_role("patient", hospital, patient)
        response = patient_client.post("/api/me/credentials", json={"name": "Health App"})
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        return Credential(body["key"], body["secret"], body)

    def application(self, developer: FlaskClient | None = None, **extra) -> Credential:
        developer = developer or self.as_role("developer")
        response = developer.post("/api/apps", json={"name": "Multi-hospital app", **extra})
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        return Credential(body["client_id"], body.get("client_secret"), body)


@pytest.fixture
def make(app) -> Factories:
    return Factories(app)


@pytest.fixture
def sandbox(make) -> str:
    return make.hospital("sandbox", "Sandbox")


def token_request(client: FlaskClient, cred: Credential, **form):
    """POST /oauth/token with client_secret_basic."""
    return client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", **form},
        headers=basic_auth(cred.key, cred.secret),
    )


def count_rows(table: str) -> int:
    return db.session.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def count_stored(table: str) -> int:
    """Rows of a FHIR store table, leaving out the AuditEvents every request adds."""
    query = f"SELECT COUNT(*) FROM {table} WHERE resource_type <> 'AuditEvent'"
    return db.session.execute(text(query)).scalar_one()
