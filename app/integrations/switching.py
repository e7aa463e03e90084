"""A developer switches an application's integration with a connected hospital on or off.

Switching on with the developer's own EHR credentials takes the application's client secret
as well: it is checked as the token endpoint checks it (and counted against the same failure
limit), the application's integration key is derived from it (``sealing``), and the
credentials are sealed under that key; neither the secret nor the key is kept. Switching on in
test mode (``use_test_credentials``) takes neither: the operator's test credentials serve.
Either way the application is granted the permissions asked for — within the hospital's scope
— so that its tokens reach the hospital as a granted hospital's do; switching off deletes
the credentials and the grant.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete

from app.extensions import db
from app.integrations.models import (
    NEEDED_CREDENTIALS,
    OPTIONAL_CREDENTIALS,
    OWN,
    TEST,
    HospitalUpstream,
    IntegrationCredential,
    IntegrationSalt,
)
from app.integrations.sealing import (
    Unopenable,
    integration_key,
    new_salt,
    passphrase_check,
    passphrase_key,
    passphrase_matches,
    remembered_passphrase_key,
    seal,
    unseal,
)
from app.integrations.upstreams import credentials_problem
from app.models import SANDBOX_HOSPITAL_ID, Hospital
from app.timeutil import utcnow
from oauth import (
    AppGrant,
    OAuthClient,
    ScopeError,
    SmartScope,
    grant_application,
    normalize_scope_list,
    parse_scopes,
    rotate_application_secret,
    withdraw_application,
)
from oauth.credentials import secret_matches
from oauth.models import KEY_AUTH_METHOD, SECRET_AUTH_METHODS
from oauth.operations import NewCredential
from oauth.scopes import covers
from oauth.token_limits import count as count_token_request
from oauth.token_limits import retry_after
from oauth.validity import bump_epoch

ON, OFF, NEEDS_CREDENTIALS = "on", "off", "needs_credentials"
MIN_PASSPHRASE = 16


class IntegrationError(ValueError):
    """The switch cannot be made; ``status`` is the HTTP status, the message says why."""

    def __init__(self, status: int, message: str, retry_after: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.code = code  # the management API's error code, where the status says too little


@dataclass(frozen=True)
class Integration:
    """What an application has of one hospital, as the developer sees it."""

    hospital: Hospital
    upstream: HospitalUpstream | None  # None: a local hospital (access requests, as before)
    credential: IntegrationCredential | None
    status: str  # ON, OFF or NEEDS_CREDENTIALS (sealed under a secret since rotated)
    permissions: list[str]


def credentials_needed(upstream: HospitalUpstream) -> dict[str, list[str]]:
    return {
        "required": list(NEEDED_CREDENTIALS[upstream.auth_kind]),
        "optional": list(OPTIONAL_CREDENTIALS[upstream.auth_kind]),
    }


def hospitals_with_upstreams() -> list[tuple[Hospital, HospitalUpstream | None]]:
    """Every hospital an application could use, the sandbox first, then by id."""
    rows = db.session.execute(
        db.select(Hospital, HospitalUpstream)
        .outerjoin(HospitalUpstream, HospitalUpstream.hospital_id == Hospital.id)
        .order_by(Hospital.id != SANDBOX_HOSPITAL_ID, Hospital.id)
    ).all()
    return [(hospital, upstream) for hospital, upstream in rows]


def integrations_of(client: OAuthClient) -> list[Integration]:
    """The application's state at every connected hospital."""
    credentials = {
        row.hospital_id: row
        for row in db.session.scalars(
            db.select(IntegrationCredential).where(IntegrationCredential.client_id == client.client_id)
        )
    }
    grants = {
        grant.hospital_id: grant.scope.split()
        for grant in db.session.scalars(db.select(AppGrant).where(AppGrant.client_id == client.client_id))
    }
    result = []
    for hospital, upstream in hospitals_with_upstreams():
        if upstream is None:
            continue
        credential = credentials.get(hospital.id)
        result.append(
            Integration(
                hospital, upstream, credential, _status(client, credential), grants.get(hospital.id, [])
            )
        )
    return result


def integration_of(client: OAuthClient, hospital_id: str) -> Integration | None:
    return next((item for item in integrations_of(client) if item.hospital.id == hospital_id), None)


def _status(client: OAuthClient, credential: IntegrationCredential | None) -> str:
    if credential is None:
        return OFF
    if credential.mode == OWN and credential.generation != client.generation:
        return NEEDS_CREDENTIALS
    return ON


def uses_passphrase(client: OAuthClient) -> bool:
    """An application that authenticates with public keys only has no secret to lock its EHR
    credentials with: an integration passphrase its developer sets stands in for it."""
    return client.auth_methods.split() == [KEY_AUTH_METHOD]


def _limited(client_id: str, address: str | None) -> None:
    wait = retry_after(client_id, address, per_client=False)
    if wait is not None:
        raise IntegrationError(
            429, "Too many wrong secrets or passphrases; try again later.", retry_after=wait
        )


def passphrase_key_of(client_id: str, generation: int, passphrase: object, address: str | None) -> bytes:
    """The integration key of the application's passphrase, checked as a secret is (the same
    failure limit); ``IntegrationError`` 400 without a passphrase set, 401 for a wrong one."""
    salt = db.session.get(IntegrationSalt, client_id)
    if salt is None or salt.passphrase_check is None or salt.generation != generation:
        raise IntegrationError(400, "Set an integration passphrase for this application first.")
    if not isinstance(passphrase, str) or not passphrase:
        raise IntegrationError(
            400, "Give the application's integration passphrase: it locks the EHR credentials."
        )
    _limited(client_id, address)
    key = remembered_passphrase_key(passphrase, salt.salt)
    if not passphrase_matches(key, client_id, salt.passphrase_check):
        count_token_request(None, client_id, address, 401)
        raise IntegrationError(
            401,
            "The integration passphrase is not this application's.",
            code="invalid_integration_passphrase",
        )
    return key


def set_passphrase(client: OAuthClient, passphrase: object, current: object, address: str | None) -> None:
    """Set (or change) the integration passphrase of an application without a secret. Credentials
    sealed under the current one are sealed again under the new one, which needs the current."""
    if not uses_passphrase(client):
        raise IntegrationError(
            400, "Only an application that authenticates with public keys has an integration passphrase: "
            "others lock their EHR credentials with their client secret.",
        )  # fmt: skip
    if (
        not isinstance(passphrase, str)
        or not MIN_PASSPHRASE <= len(passphrase) <= 512
        or not passphrase.isprintable()
    ):
        raise IntegrationError(400, f"The passphrase needs {MIN_PASSPHRASE} to 512 printable characters.")
    sealed = _sealed_now(client)
    opened: dict[str, dict[str, str]] = {}
    if sealed:
        if current is None:
            raise IntegrationError(
                409,
                "Give 'current_passphrase' to seal the EHR credentials again, "
                "or switch the integrations off first.",
            )
        old_key = passphrase_key_of(client.client_id, client.generation, current, address)
        opened = {
            row.hospital_id: unseal(old_key, client.client_id, row.hospital_id, row.sealed) for row in sealed
        }
    salt = new_salt()
    key = passphrase_key(passphrase, salt)
    row = db.session.get(IntegrationSalt, client.client_id)
    if row is None:
        row = IntegrationSalt(client_id=client.client_id)
        db.session.add(row)
    row.salt, row.generation, row.passphrase_check = (
        salt,
        client.generation,
        passphrase_check(key, client.client_id),
    )
    now = utcnow()
    for credential in sealed:
        credential.sealed = seal(
            key, client.client_id, credential.hospital_id, opened[credential.hospital_id]
        )
        credential.updated_at = now
    bump_epoch()  # workers keep integrations per epoch: the re-sealed ones replace them now
    db.session.commit()


def _sealed_now(client: OAuthClient) -> list[IntegrationCredential]:
    """The application's own credentials sealed under its current secret or passphrase."""
    rows = db.session.scalars(
        db.select(IntegrationCredential).where(
            IntegrationCredential.client_id == client.client_id, IntegrationCredential.mode == OWN
        )
    )
    return [row for row in rows if row.generation == client.generation]


def check_client_secret(client: OAuthClient, secret: object, address: str | None) -> str:
    """The application's current client secret, checked as the token endpoint checks one:
    refused while the address has used up its failures for this client, a failure counted."""
    if not client.secret_hash or not set(SECRET_AUTH_METHODS.split()) & set(client.auth_methods.split()):
        raise IntegrationError(
            400,
            "This application has no client secret (it uses public keys or is a public client): "
            "its EHR credentials need a secret to be locked with.",
        )
    if not isinstance(secret, str) or not secret:
        raise IntegrationError(400, "Give the application's client secret: it locks the EHR credentials.")
    _limited(client.client_id, address)
    if not secret_matches(secret, client.secret_hash):
        count_token_request(None, client.client_id, address, 401)
        raise IntegrationError(
            401, "The client secret is not this application's current secret.", code="invalid_client_secret"
        )
    return secret


def _permissions(upstream: HospitalUpstream, asked: list[str] | None) -> list[str]:
    ceiling = upstream.scope.split()
    if asked is None:
        return ceiling
    try:
        wanted = normalize_scope_list(asked, context="system")
    except ScopeError as error:
        raise IntegrationError(400, f"permissions: {error}") from None
    granted = parse_scopes(ceiling)
    beyond = [item for item in wanted if not covers(granted, SmartScope.parse(item))]
    if beyond:
        raise IntegrationError(
            400, f"permissions: {', '.join(beyond)} beyond what this hospital allows ({upstream.scope})."
        )
    return wanted


def _salt(client: OAuthClient) -> bytes:
    """The application's salt for its current secret (a new one after a rotation)."""
    row = db.session.get(IntegrationSalt, client.client_id)
    if row is None:
        row = IntegrationSalt(client_id=client.client_id, salt=new_salt(), generation=client.generation)
        db.session.add(row)
    elif row.generation != client.generation:
        row.salt, row.generation, row.passphrase_check = new_salt(), client.generation, None
    return row.salt


def switch_on(
    client: OAuthClient,
    upstream: HospitalUpstream,
    *,
    address: str | None,
    credentials: object = None,
    client_secret: object = None,
    integration_passphrase: object = None,
    use_test_credentials: bool = False,
    permissions: list[str] | None = None,
) -> Integration:
    """Switch the integration on (or replace its credentials)."""
    hospital_id = upstream.hospital_id
    scope = _permissions(upstream, permissions)
    if use_test_credentials:
        if credentials is not None or client_secret is not None or integration_passphrase is not None:
            raise IntegrationError(
                400, "Test mode uses the operator's credentials: give no credentials or secret."
            )
        if upstream.test_credentials is None:
            raise IntegrationError(400, "This hospital has no test credentials: give your own.")
        mode, sealed = TEST, None
    else:
        if credentials is None:
            raise IntegrationError(
                400, "Give your credentials for this EHR, or 'use_test_credentials': true where offered."
            )
        if problem := credentials_problem(upstream.auth_kind, credentials):
            raise IntegrationError(400, f"credentials {problem}")
        if uses_passphrase(client):
            key = passphrase_key_of(client.client_id, client.generation, integration_passphrase, address)
        else:
            key = integration_key(check_client_secret(client, client_secret, address), _salt(client))
        mode, sealed = OWN, seal(key, client.client_id, hospital_id, credentials)  # type: ignore[arg-type]
    row = db.session.get(IntegrationCredential, (client.client_id, hospital_id))
    now = utcnow()
    if row is None:
        row = IntegrationCredential(client_id=client.client_id, hospital_id=hospital_id, created_at=now)
        db.session.add(row)
    row.mode, row.sealed, row.generation, row.updated_at = mode, sealed, client.generation, now
    grant_application(client, hospital_id, scope)  # commits the credentials with the grant
    integration = integration_of(client, hospital_id)
    assert integration is not None
    return integration


def switch_off(client: OAuthClient, hospital_id: str) -> bool:
    """Delete the application's credentials for the hospital and its grant there."""
    deleted = db.session.execute(
        delete(IntegrationCredential).where(
            IntegrationCredential.client_id == client.client_id,
            IntegrationCredential.hospital_id == hospital_id,
        )
    ).rowcount
    if not deleted:
        db.session.rollback()
        return False
    withdraw_application(client, hospital_id)  # commits the deletion with the withdrawal
    return True


def rotate_secret_keeping_integrations(
    client: OAuthClient, current_secret: object, address: str | None
) -> NewCredential:
    """Rotate the application's secret. Given the current secret, its EHR credentials are
    opened with the old key and sealed again under the new secret's; without it they can no
    longer be opened and show as needing to be entered again (``NEEDS_CREDENTIALS``)."""
    sealed = [] if uses_passphrase(client) else _sealed_now(client)
    opened: dict[str, dict[str, str]] = {}
    if current_secret is not None:
        secret = check_client_secret(client, current_secret, address)
        if sealed:
            salt = db.session.get(IntegrationSalt, client.client_id)
            old_key = integration_key(secret, salt.salt) if salt is not None else b""
            for row in sealed:
                try:
                    opened[row.hospital_id] = unseal(old_key, client.client_id, row.hospital_id, row.sealed)
                except Unopenable:
                    continue  # sealed under an older secret: it stays to be entered again
    new = rotate_application_secret(client)
    if opened:
        key = integration_key(new.secret, _salt(client))
        now = utcnow()
        for row in sealed:
            if row.hospital_id in opened:
                row.sealed = seal(key, client.client_id, row.hospital_id, opened[row.hospital_id])
                row.generation, row.updated_at = client.generation, now
        bump_epoch()  # workers keep integrations per epoch: the re-sealed ones replace them now
        db.session.commit()
    return new
