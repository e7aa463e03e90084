"""The ``fhirgate`` command line (the same commands as ``flask --app wsgi``)."""

from __future__ import annotations

import json
import secrets
import signal
import sys
import threading
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import event, select

from app.accounts import AccountError, create_hospital, create_user, set_hospital_limits
from app.extensions import db
from app.integrations.models import AUTH_KINDS
from app.integrations.upstreams import (
    DEFAULT_API_KEY_HEADER,
    DEFAULT_SCOPE,
    UpstreamError,
    UpstreamSettings,
    connect_hospital,
    disconnect_hospital,
)
from app.models import ROLES, SANDBOX_HOSPITAL_ID, Hospital, User
from fhir.bulk.worker import work, worker_name
from fhir.importer import import_files, load_in_transactions, load_resources
from fhir.reindex import reindex_hospital
from fhir.sandbox import generate
from fhir.storage.sql import SqlRepository
from oauth import create_signing_key, keyring

BOOTSTRAP_ADMIN = "admin@fhirgate.local"
BOOTSTRAP_PATIENTS = 10
MAX_REFUSALS_SHOWN = 100


def without_statement_timeout() -> None:
    """A bulk load is the operator's job, not a request: its statements (a COPY of a large
    Bundle's index rows) are not held to the requests' statement timeout (app/time_limits.py)."""
    if db.engine.dialect.name == "postgresql":
        db.session.remove()  # a connection checked out before keeps its timeout: start afresh
        event.listen(db.engine, "checkout", _lift_statement_timeout)


def _lift_statement_timeout(dbapi_connection, _record, _proxy) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET statement_timeout = 0")
    finally:
        cursor.close()
    dbapi_connection.commit()  # a SET in a transaction rolled back would be undone


def _fail(error: AccountError):
    raise click.ClickException(str(error))


@click.group("hospital", help="Manage hospitals.")
def hospital_cli():
    pass


@hospital_cli.command("create")
@click.argument("hospital_id")
@click.option("--name", required=True, help="Display name.")
@with_appcontext
def hospital_create(hospital_id: str, name: str):
    """Create a hospital with the slug HOSPITAL_ID ([a-z0-9-]{2,40})."""
    try:
        create_hospital(hospital_id, name)
    except AccountError as error:
        _fail(error)
    click.echo(f"hospital {hospital_id} created")


@hospital_cli.command("limits")
@click.argument("hospital_id")
@click.option(
    "--client", "client_limit", help="Points per period for each client, e.g. 30000/minute, or default."
)
@click.option(
    "--hospital", "hospital_limit", help="Points per period for all its clients together, or default."
)
@with_appcontext
def hospital_limits(hospital_id: str, client_limit: str | None, hospital_limit: str | None):
    """Show or set the FHIR API rate limits of HOSPITAL_ID (workers apply them within 30 s)."""
    changes = {
        name: None if value == "default" else value
        for name, value in (("fhir_client_limit", client_limit), ("fhir_hospital_limit", hospital_limit))
        if value is not None
    }
    try:
        hospital = set_hospital_limits(hospital_id, **changes)
    except AccountError as error:
        _fail(error)
    config = current_app.config
    client = hospital.fhir_client_limit or f"{config['FHIRGATE_FHIR_CLIENT_LIMIT']} (default)"
    whole = hospital.fhir_hospital_limit or f"{config['FHIRGATE_FHIR_HOSPITAL_LIMIT']} (default)"
    click.echo(f"hospital {hospital_id}: each client {client}; all clients together {whole}")


@hospital_cli.command("connect")
@click.argument("hospital_id")
@click.option("--base-url", required=True, help="The upstream EHR's FHIR R4/R4B base URL.")
@click.option(
    "--auth",
    "auth_kind",
    required=True,
    type=click.Choice([kind.replace("_", "-") for kind in AUTH_KINDS]),
    help="How the upstream authenticates callers.",
)
@click.option("--token-url", help="The upstream's token endpoint (backend-services, client-secret).")
@click.option(
    "--api-key-header", help=f"The header of an api-key upstream (default {DEFAULT_API_KEY_HEADER})."
)
@click.option(
    "--scope", default=DEFAULT_SCOPE, show_default=True, help="Asked of the upstream; the most an app gets."
)
@click.option(
    "--test-credentials-stdin",
    is_flag=True,
    help="Read the operator's test credentials (a JSON object) from standard input.",
)
@with_appcontext
def hospital_connect(
    hospital_id, base_url, auth_kind, token_url, api_key_header, scope, test_credentials_stdin
):
    """Serve HOSPITAL_ID from an upstream FHIR server (an EHR) instead of the local store."""
    hospital = db.session.get(Hospital, hospital_id)
    if hospital is None:
        raise click.ClickException(f"no hospital {hospital_id}")
    test_credentials = None
    if test_credentials_stdin:
        try:
            test_credentials = json.loads(sys.stdin.read())
        except ValueError:
            raise click.ClickException("the test credentials on standard input are not JSON") from None
    settings = UpstreamSettings(
        base_url, auth_kind.replace("-", "_"), token_url, api_key_header, scope, test_credentials
    )
    try:
        connect_hospital(hospital, settings)
    except UpstreamError as error:
        raise click.ClickException(str(error)) from None
    offered = "with test credentials" if test_credentials is not None else "without test credentials"
    click.echo(f"hospital {hospital_id} connected to {base_url.rstrip('/')} ({auth_kind}, {offered})")


@hospital_cli.command("disconnect")
@click.argument("hospital_id")
@with_appcontext
def hospital_disconnect(hospital_id: str):
    """Serve HOSPITAL_ID from the local store again; applications' integrations with it end."""
    hospital = db.session.get(Hospital, hospital_id)
    if hospital is None:
        raise click.ClickException(f"no hospital {hospital_id}")
    if not disconnect_hospital(hospital):
        raise click.ClickException(f"hospital {hospital_id} is not connected")
    click.echo(f"hospital {hospital_id} disconnected: its local store serves it again")


@click.group("user", help="Manage people who log in.")
def user_cli():
    pass


@user_cli.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--hospital", "hospital_id", help="The hospital of a hospital-admin or patient.")
@click.option("--patient", "patient_id", help="The Patient id of a patient user.")
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password from standard input.")
@with_appcontext
def user_create(email, role, hospital_id, patient_id, password_stdin):
    """Create a user; the password is read from standard input, never from the command line."""
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        create_user(email, password, role, hospital_id=hospital_id, patient_id=patient_id)
    except AccountError as error:
        _fail(error)
    click.echo(f"user {email.lower()} created with role {role}")


@click.group("keys", help="Manage token signing keys.")
def keys_cli():
    pass


@keys_cli.command("rotate")
@with_appcontext
def keys_rotate():
    """Add new signing keys (ES256 for access tokens, RS256 for ID tokens); the old ones stay in
    the JWK Set until their tokens expire."""
    row = create_signing_key()
    id_token_row = create_signing_key(alg="RS256")
    db.session.commit()
    keyring().invalidate()
    click.echo(f"new signing key {row.kid}; workers pick it up within 30 seconds")
    click.echo(f"new ID token signing key {id_token_row.kid} (RS256)")


@click.group("sandbox", help="The sandbox hospital every application may use.")
def sandbox_cli():
    pass


def ensure_sandbox() -> bool:
    if db.session.get(Hospital, SANDBOX_HOSPITAL_ID) is not None:
        return False
    create_hospital(SANDBOX_HOSPITAL_ID, "Sandbox Hospital (test data)")
    return True


@sandbox_cli.command("seed")
@click.option("--patients", type=click.IntRange(0, 1_000_000), default=0, help="Synthetic patients to add.")
@click.option("--seed", "random_seed", type=int, default=0, help="Seed of the deterministic generator.")
@with_appcontext
def sandbox_seed(patients: int, random_seed: int):
    """Create the sandbox hospital and fill it with N synthetic patients' records."""
    without_statement_timeout()
    created = ensure_sandbox()
    click.echo("sandbox hospital created" if created else "sandbox hospital exists")
    if patients:
        started = time.perf_counter()
        count = load_in_transactions(SANDBOX_HOSPITAL_ID, generate(patients, seed=random_seed))
        elapsed = time.perf_counter() - started
        rate = count / elapsed if elapsed else 0
        click.echo(f"loaded {count} resources for {patients} patients in {elapsed:.1f} s ({rate:.0f}/s)")


@click.command("import")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--hospital", "hospital_id", required=True, help="The hospital whose store receives them.")
@with_appcontext
def import_command(files: tuple[Path, ...], hospital_id: str):
    """Load FHIR Bundles (JSON) or ndjson files into a hospital's FHIR store. What the store
    refuses is listed with its place (file:line) and reason, and the rest is loaded; the exit
    status is 1 when anything was refused."""
    without_statement_timeout()
    if db.session.get(Hospital, hospital_id) is None:
        raise click.ClickException(f"no hospital {hospital_id}")
    started = time.perf_counter()
    total = sum(path.stat().st_size for path in files)
    # The bar goes to a terminal only; piped or logged, only the summary is written.
    shown = sys.stderr.isatty()
    with click.progressbar(length=total, label="importing", file=sys.stderr, show_pos=False) as bar:
        report = import_files(hospital_id, list(files), progress=bar.update if shown else lambda _: None)
    elapsed = time.perf_counter() - started
    rate = report.resources / elapsed if elapsed else 0
    click.echo(
        f"imported {report.resources} resources from {report.files} file(s) into {hospital_id}"
        f" in {elapsed:.1f} s ({rate:,.0f}/s)"
    )
    if report.refused:
        click.echo(f"refused {len(report.refused)}:", err=True)
        for refusal in report.refused[:MAX_REFUSALS_SHOWN]:
            click.echo(f"  {refusal.place}: {refusal.reason}", err=True)
        if len(report.refused) > MAX_REFUSALS_SHOWN:
            click.echo(f"  … and {len(report.refused) - MAX_REFUSALS_SHOWN} more", err=True)
        sys.exit(1)


@click.command("reindex")
@click.option(
    "--hospital", "hospital_ids", multiple=True, help="Only this hospital (repeatable); all by default."
)
@with_appcontext
def reindex_command(hospital_ids: tuple[str, ...]):
    """Rebuild the search index and patient compartments of stored resources (after an upgrade
    that changes the search definitions, as the move to R4B's did)."""
    without_statement_timeout()
    known = [h.id for h in db.session.scalars(select(Hospital).order_by(Hospital.id))]
    unknown = sorted(set(hospital_ids) - set(known))
    if unknown:
        raise click.ClickException(f"no hospital {unknown[0]}")
    for hospital_id in hospital_ids or known:
        started = time.monotonic()
        count = reindex_hospital(db.session, hospital_id)
        click.echo(f"{hospital_id}: reindexed {count} resources in {time.monotonic() - started:.1f} s")


@click.command("worker")
@click.option("--until-idle", is_flag=True, help="Stop when no export is waiting (for scripts and tests).")
@with_appcontext
def worker_command(until_idle: bool):
    """Run Bulk Data export jobs until stopped (SIGTERM or Ctrl-C give the job back)."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    click.echo(f"export worker {worker_name()} waiting for jobs")
    work(current_app._get_current_object(), stop, until_idle=until_idle)


@click.command("bootstrap")
@with_appcontext
def bootstrap():
    """Prepare a local try: signing key, sandbox hospital with a few patients, a superadmin."""
    keyring().signing_key()
    ensure_sandbox()
    repo = SqlRepository(db.session, SANDBOX_HOSPITAL_ID)
    if not repo.has_any("Patient"):
        count = load_resources(repo, generate(BOOTSTRAP_PATIENTS))
        click.echo(f"sandbox: loaded {count} synthetic resources for {BOOTSTRAP_PATIENTS} patients")
    base = current_app.config["FHIRGATE_BASE_URL"]
    click.echo(f"fhirgate at {base}")
    click.echo(f"  OAuth metadata   {base}/.well-known/oauth-authorization-server")
    click.echo(f"  token endpoint   {base}/oauth/token")
    click.echo(f"  management API   {base}/api")
    click.echo(f"  sandbox FHIR     {base}/fhir/{SANDBOX_HOSPITAL_ID}  (metadata needs no token)")
    if db.session.scalar(select(User).where(User.email == BOOTSTRAP_ADMIN)) is None:
        password = secrets.token_urlsafe(12)
        create_user(BOOTSTRAP_ADMIN, password, "superadmin")
        click.echo(f"  superadmin login {BOOTSTRAP_ADMIN} / {password}  (shown this once)")
    else:
        click.echo(f"  superadmin login {BOOTSTRAP_ADMIN} (password shown on the first run)")


@click.command("version")
def version():
    """Print the versions of fhirgate, the FHIR release and fhir.resources."""
    from importlib.metadata import version as dist_version

    import fhir.resources
    from fhir.version import FHIR_VERSION

    click.echo(f"fhirgate {dist_version('fhirgate')}")
    click.echo(f"FHIR {FHIR_VERSION} (fhir.resources {fhir.resources.__version__})")


def register_commands(app: Flask) -> None:
    commands = (
        hospital_cli,
        user_cli,
        keys_cli,
        sandbox_cli,
        import_command,
        reindex_command,
        bootstrap,
        version,
        worker_command,
    )
    for command in commands:
        app.cli.add_command(command)


def main() -> None:
    from app import create_app

    FlaskGroup(create_app=lambda: create_app(), name="fhirgate", load_dotenv=False).main(prog_name="fhirgate")
