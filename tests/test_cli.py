"""The ``fhirgate`` commands (run in-process through Flask's CLI runner)."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import Hospital, User
from tests.conftest import PASSWORD


def run(app, *args, input=None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def test_hospital_create(app, ctx):
    result = run(app, "hospital", "create", "st-mary", "--name", "St Mary")
    assert result.exit_code == 0, result.output
    assert db.session.get(Hospital, "st-mary").name == "St Mary"


def test_hospital_create_refuses_bad_slugs_and_duplicates(app, ctx):
    assert run(app, "hospital", "create", "St Mary", "--name", "x").exit_code != 0
    assert run(app, "hospital", "create", "a", "--name", "x").exit_code != 0
    assert run(app, "hospital", "create", "dup", "--name", "x").exit_code == 0
    duplicate = run(app, "hospital", "create", "dup", "--name", "x")
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output


def test_user_create_reads_the_password_from_stdin(app, ctx):
    run(app, "hospital", "create", "general", "--name", "General")
    result = run(
        app, "user", "create", "Admin@Example.org", "--role", "hospital-admin", "--hospital", "general",
        "--password-stdin", input=PASSWORD + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    user = db.session.scalar(select(User).where(User.email == "admin@example.org"))
    assert user.role == "hospital-admin" and user.password_hash.startswith("$argon2id$")
    login = app.test_client().post("/api/session", json={"email": "admin@example.org", "password": PASSWORD})
    assert login.status_code == 200


def test_user_create_rejects_inconsistent_roles(app, ctx):
    run(app, "hospital", "create", "general", "--name", "General")
    base = ["user", "create"]
    assert run(app, *base, "a@example.org", "--role", "patient", "--hospital", "general", "--password-stdin",
               input=PASSWORD).exit_code != 0  # fmt: skip
    assert run(app, *base, "b@example.org", "--role", "hospital-admin", "--password-stdin",
               input=PASSWORD).exit_code != 0  # fmt: skip
    assert (
        run(app, *base, "c@example.org", "--role", "developer", "--password-stdin", input="short").exit_code
        != 0
    )
    assert (
        run(app, *base, "d@example.org", "--role", "wizard", "--password-stdin", input=PASSWORD).exit_code
        != 0
    )
    assert run(app, *base, "e@example.org", "--role", "developer", input=PASSWORD).exit_code != 0


def test_bootstrap_prepares_a_local_try_once(app, ctx):
    first = run(app, "bootstrap")
    assert first.exit_code == 0, first.output
    assert "admin@fhirgate.local / " in first.output
    assert db.session.get(Hospital, "sandbox") is not None
    password = first.output.split("admin@fhirgate.local / ")[1].split()[0]
    login = app.test_client().post(
        "/api/session", json={"email": "admin@fhirgate.local", "password": password}
    )
    assert login.status_code == 200
    second = run(app, "bootstrap")
    assert second.exit_code == 0 and password not in second.output


def test_sandbox_seed_creates_the_sandbox_hospital(app, ctx):
    assert run(app, "sandbox", "seed").exit_code == 0
    assert db.session.get(Hospital, "sandbox") is not None
    assert "exists" in run(app, "sandbox", "seed").output
