"""OAuth clients of the three kinds, application grants, revoked token ids, signing keys.

Access tokens themselves are never stored: a token is valid while its signature, expiry,
client generation and ``jti`` (absent from ``revoked_tokens``) say so.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.timeutil import as_utc, utcnow

HOSPITAL_KEY = "hospital_key"
PATIENT_CREDENTIAL = "patient_credential"
APPLICATION = "application"
CLIENT_KINDS = (HOSPITAL_KEY, PATIENT_CREDENTIAL, APPLICATION)

SECRET_AUTH_METHODS = "client_secret_basic client_secret_post"
KEY_AUTH_METHOD = "private_key_jwt"


class OAuthClient(db.Model):
    """A client of the token endpoint: hospital API key, patient credential or application."""

    __tablename__ = "oauth_clients"
    __table_args__ = (
        CheckConstraint("kind IN ('hospital_key', 'patient_credential', 'application')", name="kind"),
    )

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    # HMAC-SHA256 of the secret under the server's pepper (hex); never the secret.
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    auth_methods: Mapped[str] = mapped_column(String(100), default=SECRET_AUTH_METHODS)
    # private_key_jwt clients: public keys inline (a JWK Set as JSON) or at a URL.
    jwks: Mapped[str | None] = mapped_column(Text)
    jwks_uri: Mapped[str | None] = mapped_column(String(2048))
    # Why the client's last assertion was refused: told to its developer, not to the caller.
    assertion_failure: Mapped[str | None] = mapped_column(String(300))
    assertion_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    hospital_id: Mapped[str | None] = mapped_column(
        ForeignKey("hospitals.id", ondelete="CASCADE"), index=True
    )
    patient_id: Mapped[str | None] = mapped_column(String(64))
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    scope: Mapped[str | None] = mapped_column(Text)
    # SMART App Launch registration of an application (oauth.registration): exact redirect URIs
    # (a JSON array), the EHR launch URL, the home page and publisher shown on the consent page.
    redirect_uris: Mapped[str | None] = mapped_column(Text)
    launch_uri: Mapped[str | None] = mapped_column(String(2048))
    client_uri: Mapped[str | None] = mapped_column(String(2048))
    publisher: Mapped[str | None] = mapped_column(String(200))
    # Signing algorithms the application registered (None: the defaults, RS256 ID tokens and
    # ES256 access tokens); RS256 access tokens for resource servers that verify only RS256.
    id_token_alg: Mapped[str | None] = mapped_column(String(10))
    access_token_alg: Mapped[str | None] = mapped_column(String(10))
    token_ttl: Mapped[int | None] = mapped_column(Integer)
    require_key_headers: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped when the secret is rotated: tokens carrying an older generation are dead.
    generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A patient's key pair may end by itself, when its patient chose (None: never).
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # -- Authlib ClientMixin ------------------------------------------------------------
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in self.auth_methods.split()

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"

    @property
    def active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or as_utc(self.expires_at) > utcnow())


class AppGrant(db.Model):
    """A hospital's permission for an application (RFC 8707 ``resource`` target)."""

    __tablename__ = "app_grants"

    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    hospital_id: Mapped[str] = mapped_column(
        ForeignKey("hospitals.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    scope: Mapped[str] = mapped_column(Text)
    # Set whenever the grant is (re)created, from the revocation epoch bumped in the same
    # transaction (so it differs from every earlier grant's); the application's tokens for the
    # hospital carry it (claim ``grant``) and die when it changes. A scope change keeps it.
    serial: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AccessRequest(db.Model):
    """An application asking a hospital for access, waiting until an admin grants or declines."""

    __tablename__ = "app_access_requests"

    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    hospital_id: Mapped[str] = mapped_column(
        ForeignKey("hospitals.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    scope: Mapped[str] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RevokedToken(db.Model):
    """A ``jti`` revoked through RFC 7009, kept until the token would have expired."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class UsedAssertion(db.Model):
    """A client assertion's ``jti``, kept until the assertion expires so it is used once.

    The primary key makes the check atomic across workers and hosts: of two requests with
    the same assertion, exactly one insert succeeds.
    """

    __tablename__ = "used_assertions"

    # SHA-256 of client id and jti: fixed length, whatever the client sent.
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class SigningKey(db.Model):
    """A token signing key; the private half is AES-GCM encrypted under FHIRGATE_KEK."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10))
    public_jwk: Mapped[str] = mapped_column(Text)
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Authorization(db.Model):
    """A patient's approval of an application (SMART App Launch): which scopes, on which record,
    until when. Its authorization code and refresh tokens are stored only as keyed hashes; its
    access tokens carry its id (claim ``authz``) and die with it (revocation bumps the epoch)."""

    __tablename__ = "oauth_authorizations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    hospital_id: Mapped[str] = mapped_column(ForeignKey("hospitals.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[str] = mapped_column(String(64))
    # Everything granted (``openid``, ``launch/patient``, resource scopes ...), as the patient left it.
    scope: Mapped[str] = mapped_column(Text)
    # The authorization request's, repeated in the ID token.
    nonce: Mapped[str | None] = mapped_column(String(500))
    # With fhirUser granted: the account's own resource, "Patient/{id}" or "Practitioner/{id}".
    fhir_user: Mapped[str | None] = mapped_column(String(200))
    # The authorization code (RFC 6749 §4.1.2): HMAC of it, its expiry, its single use, and what
    # it is bound to: the exact redirect URI and the PKCE challenge (RFC 7636, S256).
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    code_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    code_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    redirect_uri: Mapped[str] = mapped_column(Text)
    # Whether the authorization request named it (else the one registered URI was used).
    redirect_uri_sent: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    code_challenge: Mapped[str] = mapped_column(String(128))
    # online_access: refresh works while the portal session that approved is alive (its hash).
    session_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The patient's choice; None: until revoked.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Why it ended: "patient", "hospital", "code reused", "refresh token reused" ...
    revoked_reason: Mapped[str | None] = mapped_column(String(100))


class RefreshToken(db.Model):
    """One refresh token of an authorization (HMAC only). A token is used once: its use issues
    the next; presenting a used one again revokes the authorization (RFC 9700 §4.14.2)."""

    __tablename__ = "oauth_refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    authorization_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_authorizations.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LaunchContext(db.Model):
    """An EHR launch (SMART App Launch §"EHR launch"): a clinician opened a patient and launched
    an application; the ``launch`` value the application got (kept as a keyed hash) is exchanged,
    once, at the authorization endpoint for that patient's context."""

    __tablename__ = "oauth_launches"

    launch_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), index=True
    )
    hospital_id: Mapped[str] = mapped_column(ForeignKey("hospitals.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
