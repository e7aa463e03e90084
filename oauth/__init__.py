"""The OAuth 2.0 authorization server: clients, credentials, tokens and signing keys.

The rest of the project uses only the names exported here.
"""

from oauth.audience import fhir_base_url, token_endpoint_url
from oauth.bearer import InvalidTokenError, Principal, authenticate_bearer
from oauth.credentials import MIN_GIVEN_SECRET_LENGTH
from oauth.keys import create_signing_key, keyring
from oauth.models import (
    APPLICATION,
    HOSPITAL_KEY,
    PATIENT_CREDENTIAL,
    AppGrant,
    OAuthClient,
)
from oauth.operations import (
    active_clients,
    create_application,
    create_hospital_key,
    create_patient_credential,
    find_active_client,
    grant_application,
    revoke_client,
    rotate_application_secret,
    withdraw_application,
)
from oauth.reach import reachable_hospitals
from oauth.scopes import ScopeError, SmartScope, normalize_scope_list, parse_scopes
from oauth.server import init_oauth, oauth_error_response, rate_limited_response

__all__ = [
    "APPLICATION",
    "MIN_GIVEN_SECRET_LENGTH",
    "HOSPITAL_KEY",
    "PATIENT_CREDENTIAL",
    "AppGrant",
    "InvalidTokenError",
    "Principal",
    "OAuthClient",
    "ScopeError",
    "SmartScope",
    "active_clients",
    "authenticate_bearer",
    "create_application",
    "create_hospital_key",
    "create_patient_credential",
    "create_signing_key",
    "fhir_base_url",
    "find_active_client",
    "grant_application",
    "init_oauth",
    "keyring",
    "normalize_scope_list",
    "oauth_error_response",
    "parse_scopes",
    "rate_limited_response",
    "reachable_hospitals",
    "revoke_client",
    "rotate_application_secret",
    "token_endpoint_url",
    "withdraw_application",
]
