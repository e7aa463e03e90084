"""Connected hospitals (backed by an upstream FHIR server) and applications' EHR credentials."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.timeutil import utcnow

# How fhirgate authenticates to the upstream EHR, and the credentials each kind needs.
BACKEND_SERVICES = "backend_services"  # SMART Backend Services: a private_key_jwt assertion
CLIENT_SECRET = "client_secret"  # client credentials grant with a client id and secret
BEARER_TOKEN = "bearer_token"  # a static access token
API_KEY = "api_key"  # a key in a header the EHR names
AUTH_KINDS = (BACKEND_SERVICES, CLIENT_SECRET, BEARER_TOKEN, API_KEY)
NEEDED_CREDENTIALS = {
    BACKEND_SERVICES: ("client_id", "private_key"),
    CLIENT_SECRET: ("client_id", "client_secret"),
    BEARER_TOKEN: ("access_token",),
    API_KEY: ("api_key",),
}
# Credentials an EHR may take besides those it needs.
OPTIONAL_CREDENTIALS = {BACKEND_SERVICES: ("kid",), CLIENT_SECRET: (), BEARER_TOKEN: (), API_KEY: ()}
OWN, TEST = "own", "test"


class HospitalUpstream(db.Model):
    """The upstream FHIR server of a connected hospital: its FHIR requests go there instead of
    to the local store."""

    __tablename__ = "hospital_upstreams"
    __table_args__ = (
        CheckConstraint(
            "auth_kind IN ('backend_services', 'client_secret', 'bearer_token', 'api_key')", name="auth_kind"
        ),
    )

    hospital_id: Mapped[str] = mapped_column(ForeignKey("hospitals.id", ondelete="CASCADE"), primary_key=True)
    base_url: Mapped[str] = mapped_column(String(2048))
    auth_kind: Mapped[str] = mapped_column(String(20))
    # The upstream's token endpoint (backend_services, client_secret).
    token_url: Mapped[str | None] = mapped_column(String(2048))
    # The header that carries the key (api_key).
    api_key_header: Mapped[str | None] = mapped_column(String(100))
    # The scope asked of the upstream's token endpoint, and the most an application may be
    # granted here when it switches the integration on.
    scope: Mapped[str] = mapped_column(Text)
    # The operator's own test credentials, AES-256-GCM under FHIRGATE_KEK: unlike a developer's,
    # the server may use them without anyone's secret (that is what they are for).
    test_credentials: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IntegrationCredential(db.Model):
    """An application's switched-on integration with a connected hospital: its own EHR
    credentials sealed under a key derived from its client secret (``sealing``), or the
    operator's test credentials (``mode`` test, nothing sealed)."""

    __tablename__ = "integration_credentials"
    __table_args__ = (
        CheckConstraint("mode IN ('own', 'test')", name="mode"),
        CheckConstraint("mode = 'test' OR sealed IS NOT NULL", name="sealed_own"),
    )

    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    hospital_id: Mapped[str] = mapped_column(
        ForeignKey("hospitals.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    mode: Mapped[str] = mapped_column(String(10))
    # nonce (12 bytes) + AES-256-GCM ciphertext and tag of the credentials' JSON.
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The application's ``generation`` they were sealed at: after a rotation that could not
    # re-seal them (the old secret was not given) they no longer open and must be entered again.
    generation: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IntegrationSalt(db.Model):
    """An application's salt for deriving its integration key from its client secret (HKDF) —
    or, for an application without one (``private_key_jwt``), from the integration passphrase
    its developer set (scrypt): one per application, so that a token may carry one derived key
    for all its integrations, and new whenever the credentials are sealed under a new secret."""

    __tablename__ = "integration_salts"

    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    generation: Mapped[int] = mapped_column(Integer)
    # A passphrase's salt only: a known text sealed under its key, so that a wrong passphrase
    # is told apart (a client secret is checked against its hash instead).
    passphrase_check: Mapped[bytes | None] = mapped_column(LargeBinary)


class IntegrationTokenKey(db.Model):
    """A short-lived server key that seals an application's integration key inside its access
    tokens (claim ``ik``): kept, under FHIRGATE_KEK, only as long as a token sealed with it may
    live, then deleted, so that an old token's claim opens nothing once the key is gone."""

    __tablename__ = "integration_token_keys"

    kid: Mapped[str] = mapped_column(String(24), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # No token sealed with it outlives this: the key is deleted after it.
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
