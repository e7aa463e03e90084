"""The OAuth 2.0 authorization server: clients, credentials, tokens and signing keys.

The rest of the project uses only the names exported here.
"""

from oauth.audience import fhir_base_url, token_endpoint_url
from oauth.authorizations import approve as approve_authorization
from oauth.authorizations import (
    authorizations_at,
    authorizations_of,
    hospital_authorization,
    owned_authorization,
    revoke_authorization,
)
from oauth.authorize_request import AuthorizePageError, AuthorizeRedirectError, parse_authorization_request
from oauth.bearer import InvalidTokenError, Principal, authenticate_bearer, principal_for, verified_claims
from oauth.client_jwk import ASSERTION_ALGORITHMS, JwksError
from oauth.credentials import MIN_GIVEN_SECRET_LENGTH
from oauth.ehr_launch import launchable_apps, start_launch
from oauth.epoch_reader import EPOCH_QUERY
from oauth.keys import create_signing_key, keyring
from oauth.models import (
    APPLICATION,
    HOSPITAL_KEY,
    KEY_AUTH_METHOD,
    PATIENT_CREDENTIAL,
    AccessRequest,
    AppGrant,
    OAuthClient,
)
from oauth.operations import (
    PATIENT_DEFAULT_SCOPE,
    PublicKeys,
    access_requests,
    active_clients,
    create_application,
    create_hospital_key,
    create_patient_credential,
    decline_access_request,
    find_active_client,
    grant_application,
    public_keys,
    request_access,
    revoke_client,
    rotate_application_secret,
    set_application_keys,
    update_application_registration,
    withdraw_application,
)
from oauth.patient_consent import (
    DEFAULT_EXPIRY,
    EXPIRY_CHOICES,
    granted_scope,
    patient_offer,
    refresh_kind,
    staff_offer,
)
from oauth.reach import reachable_hospitals
from oauth.registration import AUTH_METHODS, PUBLIC_CLIENT, Metadata, RegistrationError, registration_metadata
from oauth.scopes import (
    NAMED_ONLY_TYPES,
    ScopeError,
    SmartScope,
    covers,
    normalize_scope_list,
    parse_scopes,
    resource_scopes,
)
from oauth.server import init_oauth, oauth_error_response, rate_limited_response, smart_configuration
from oauth.validity import adopt_request_epoch

__all__ = [
    "AuthorizePageError",
    "AuthorizeRedirectError",
    "DEFAULT_EXPIRY",
    "EXPIRY_CHOICES",
    "PATIENT_DEFAULT_SCOPE",
    "approve_authorization",
    "authorizations_at",
    "authorizations_of",
    "hospital_authorization",
    "granted_scope",
    "owned_authorization",
    "parse_authorization_request",
    "patient_offer",
    "refresh_kind",
    "staff_offer",
    "start_launch",
    "launchable_apps",
    "resource_scopes",
    "covers",
    "revoke_authorization",
    "ASSERTION_ALGORITHMS",
    "EPOCH_QUERY",
    "adopt_request_epoch",
    "verified_claims",
    "principal_for",
    "JwksError",
    "APPLICATION",
    "MIN_GIVEN_SECRET_LENGTH",
    "NAMED_ONLY_TYPES",
    "HOSPITAL_KEY",
    "KEY_AUTH_METHOD",
    "PATIENT_CREDENTIAL",
    "AccessRequest",
    "AppGrant",
    "InvalidTokenError",
    "Principal",
    "PublicKeys",
    "OAuthClient",
    "ScopeError",
    "SmartScope",
    "access_requests",
    "active_clients",
    "authenticate_bearer",
    "create_application",
    "update_application_registration",
    "AUTH_METHODS",
    "PUBLIC_CLIENT",
    "Metadata",
    "RegistrationError",
    "registration_metadata",
    "create_hospital_key",
    "create_patient_credential",
    "create_signing_key",
    "decline_access_request",
    "fhir_base_url",
    "find_active_client",
    "grant_application",
    "init_oauth",
    "keyring",
    "normalize_scope_list",
    "oauth_error_response",
    "parse_scopes",
    "public_keys",
    "rate_limited_response",
    "reachable_hospitals",
    "request_access",
    "revoke_client",
    "rotate_application_secret",
    "set_application_keys",
    "smart_configuration",
    "token_endpoint_url",
    "withdraw_application",
]
