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
    assert "sandbox: loaded" in first.output
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


def test_import_ndjson_and_bundles(app, ctx, tmp_path):
    import orjson

    from fhir.storage.sql import SqlRepository

    run(app, "hospital", "create", "general", "--name", "General")
    ndjson = tmp_path / "patients.ndjson"
    ndjson.write_bytes(
        b"\n".join(
            orjson.dumps({"resourceType": "Patient", "id": f"p{i}", "name": [{"family": f"F{i}"}]})
            for i in range(3)
        )
        + b"\n"
    )
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(
        orjson.dumps(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "fullUrl": "urn:uuid:1f7c3a6e-0000-4000-8000-000000000001",
                        "resource": {"resourceType": "Patient", "name": [{"family": "Bundled"}]},
                        "request": {"method": "POST", "url": "Patient"},
                    },
                    {
                        "resource": {
                            "resourceType": "Observation",
                            "status": "final",
                            "code": {"text": "x"},
                            "subject": {"reference": "urn:uuid:1f7c3a6e-0000-4000-8000-000000000001"},
                        },
                        "request": {"method": "POST", "url": "Observation"},
                    },
                ],
            }
        )
    )
    result = run(app, "import", str(ndjson), str(bundle), "--hospital", "general")
    assert result.exit_code == 0, result.output
    assert "imported 5 resources from 2 file(s)" in result.output
    repo = SqlRepository(db.session, "general")
    assert repo.exists("Patient", "p2")
    again = run(app, "import", str(ndjson), "--hospital", "general")
    assert again.exit_code == 0
    assert repo.read("Patient", "p2").version_id == 2


def test_import_reports_the_bad_line(app, ctx, tmp_path):
    run(app, "hospital", "create", "general", "--name", "General")
    bad = tmp_path / "bad.ndjson"
    bad.write_text(
        '{"resourceType": "Patient", "id": "ok"}\n{"resourceType": "Patient", "birthDate": "never"}\n'
    )
    result = run(app, "import", str(bad), "--hospital", "general")
    assert result.exit_code == 1 and "birthDate" in result.output
    assert f"{bad}:2: " in result.output and "imported 1 resources" in result.output
    assert run(app, "import", str(bad), "--hospital", "nowhere").exit_code != 0


def test_import_loads_what_is_valid_and_names_each_refusal_by_its_line(app, ctx, tmp_path):
    """Loose resources go in as transaction Bundles (here of 4); a refused one costs only itself,
    wherever it is in its batch, and each refusal names its line and reason."""
    import orjson

    from fhir.importer import import_files
    from fhir.storage.sql import SqlRepository

    run(app, "hospital", "create", "general", "--name", "General")
    lines = [orjson.dumps({"resourceType": "Patient", "id": f"p{i}", "gender": "female"}) for i in range(10)]
    lines[2] = b'{"resourceType": "Patient", "id": "p2", "gender": "sometimes"}'
    lines[5] = b'{"resourceType": "Patient", "id": "p5", '  # cut short
    lines[7] = b'{"resourceType": "Nothing", "id": "p7"}'
    lines[8] = orjson.dumps({"resourceType": "Patient", "id": "p1", "gender": "male"})  # p1 again
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    seen = []
    report = import_files("general", [path], batch_size=4, progress=seen.append)
    assert report.resources == 7 and report.files == 1
    assert [refusal.place for refusal in report.refused] == [f"{path}:3", f"{path}:6", f"{path}:8"]
    assert "gender" in report.refused[0].reason and "not valid JSON" in report.refused[1].reason
    assert "resourceType" in report.refused[2].reason
    assert sum(seen) == path.stat().st_size
    repo = SqlRepository(db.session, "general")
    assert not repo.exists("Patient", "p2") and repo.exists("Patient", "p9")
    later = repo.read("Patient", "p1")
    assert later.version_id == 2 and orjson.loads(later.content)["gender"] == "male"


def test_import_creates_resources_without_ids_once_when_their_batch_is_retried(app, ctx, tmp_path):
    import orjson

    from fhir.importer import import_files
    from fhir.storage.sql import SqlRepository

    run(app, "hospital", "create", "general", "--name", "General")
    lines = [orjson.dumps({"resourceType": "Patient", "name": [{"family": f"F{i}"}]}) for i in range(4)]
    lines[1] = b'{"resourceType": "Patient", "birthDate": "never"}'
    path = tmp_path / "no-ids.ndjson"
    path.write_bytes(b"\n".join(lines))
    report = import_files("general", [path])
    assert report.resources == 3 and [r.place for r in report.refused] == [f"{path}:2"]
    bundle = orjson.loads(SqlRepository(db.session, "general").search("Patient", [("_count", "10")]))
    families = sorted(e["resource"]["name"][0]["family"] for e in bundle["entry"])
    assert families == ["F0", "F2", "F3"]
    assert all(e["resource"]["meta"]["versionId"] == "1" for e in bundle["entry"])


def test_import_loads_a_collection_and_refuses_a_failing_transaction_whole(app, ctx, tmp_path):
    """A transaction Bundle in a file is loaded whole or not at all; what its first entries
    buffered before an entry failed goes nowhere, not even with the next batch's commit."""
    import orjson

    from fhir.importer import import_files
    from fhir.storage.sql import SqlRepository

    run(app, "hospital", "create", "general", "--name", "General")
    failing = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "name": [{"family": "T1"}]},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {"resourceType": "Patient", "birthDate": "never"},
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    collection = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "Patient", "id": f"c{i}"}} for i in range(3)],
    }
    paths = [tmp_path / "transaction.json", tmp_path / "collection.json"]
    for path, body in zip(paths, (failing, collection), strict=True):
        path.write_bytes(orjson.dumps(body))
    report = import_files("general", paths)
    assert report.resources == 3 and report.files == 2
    assert len(report.refused) == 1 and report.refused[0].place == str(paths[0])
    assert "birthDate" in report.refused[0].reason
    bundle = orjson.loads(SqlRepository(db.session, "general").search("Patient", [("_count", "10")]))
    assert sorted(e["resource"]["id"] for e in bundle["entry"]) == ["c0", "c1", "c2"]


def test_sandbox_seed_with_patients(app, ctx):
    import orjson

    from fhir.storage.sql import SqlRepository

    result = run(app, "sandbox", "seed", "--patients", "2")
    assert result.exit_code == 0, result.output
    assert "loaded" in result.output
    repo = SqlRepository(db.session, "sandbox")
    bundle = orjson.loads(repo.search("Patient", [("_summary", "count")]))
    assert bundle["total"] == 2


def test_sandbox_seed_stores_every_generated_resource_and_seeding_again_adds_only_versions(app, ctx):
    import orjson

    from fhir.sandbox import generate
    from fhir.storage.sql import SqlRepository

    generated = list(generate(3))
    first = run(app, "sandbox", "seed", "--patients", "3")
    assert first.exit_code == 0, first.output
    assert f"loaded {len(generated)} resources" in first.output
    repo = SqlRepository(db.session, "sandbox")
    for resource_type in {resource["resourceType"] for resource in generated}:
        bundle = orjson.loads(repo.search(resource_type, [("_summary", "count")]))
        assert bundle["total"] == sum(r["resourceType"] == resource_type for r in generated), resource_type
    assert run(app, "sandbox", "seed", "--patients", "3").exit_code == 0  # the same ids: updates
    patient = generated[[r["resourceType"] for r in generated].index("Patient")]
    assert repo.read("Patient", patient["id"]).version_id == 2
