"""The common read and search of a connected hospital, forwarded beneath Flask.

``GET /fhir/{hospital}/{Type}/{id}`` and ``GET /fhir/{hospital}/{Type}?...`` of an application
with a token of ours: through the view, Flask's request handling, its hooks and a session's
transaction cost several times the forwarding itself. This WSGI middleware makes the same
decisions with the same functions — the revocation epoch, the token (``verified_claims``,
``principal_for``), the scope check (``AccessPolicy``), the fair share, the credentials opened
with the token's key (``opened_credentials``, the worker's copy for the epoch) — and forwards
with the view's own ``exchange`` and ``shaped``. Until the request is sent, anything it does not
answer goes on to the view untouched (every refusal is the view's to render). Once sent, it
answers whatever comes back itself, errors too, so that nothing is sent upstream twice; and it
audits the request as the view would. A request with ``X-Client-Id``/``X-Client-Secret`` or
``X-Integration-Passphrase`` goes to the view (which counts a wrong one once).
``FHIRGATE_PROXY_FAST_PATH=0`` turns it off.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from urllib.parse import parse_qsl

import orjson

from app.fast_path import FastPath
from app.integrations.gateway import IntegrationDenied, connected_upstream, key_from_token, opened_credentials
from fhir.audit import NEVER_RECORDED, audit_writer, fast_path_facts
from fhir.errors import FhirError, Issue
from fhir.fair_share import WEIGHTS, Admission
from fhir.http import NO_STORE
from fhir.policy import AccessPolicy
from fhir.read_fast_path import plain_request
from fhir.upstream_proxy import exchange, included_types, shaped
from fhir.version import FHIR_JSON
from oauth import APPLICATION, InvalidTokenError, principal_for, verified_claims

log = logging.getLogger(__name__)
_PATH = re.compile(r"/fhir/([A-Za-z0-9\-.]{1,40})/([A-Z][A-Za-z]{1,63})(?:/([A-Za-z0-9\-.]{1,64}))?")
_OUTCOME_TYPE = ("Content-Type", f"{FHIR_JSON}; charset=utf-8")
# The share each costs, as the view charges it (fhir.fair_share).
_WEIGHTS = {"read": WEIGHTS["read"], "search": WEIGHTS["search-type"]}


class UpstreamFastPath(FastPath):
    """Outermost of the FHIR fast paths: it looks only at hospitals known to be connected."""

    name = "upstream fast path"

    def takes(self, environ) -> bool:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "GET" or not path.startswith("/fhir/"):
            return False
        hospital_id = path[6:].split("/", 1)[0]
        connected = self.app.extensions["fhirgate_connected_hospitals"]
        return self.app.config["FHIRGATE_PROXY_FAST_PATH"] and connected.known_connected(hospital_id)

    def answer(self, environ):
        matched = _PATH.fullmatch(environ["PATH_INFO"])
        query = environ.get("QUERY_STRING", "")
        if (
            matched is None
            or not plain_request(environ)
            or "HTTP_X_CLIENT_ID" in environ
            or "HTTP_X_INTEGRATION_PASSPHRASE" in environ
        ):
            return None
        hospital_id, resource_type, resource_id = matched.groups()
        interaction = "read" if resource_id is not None else "search"
        if resource_id is not None and query:
            return None  # a read's _elements or _summary: the view's
        names = [name for name, _ in parse_qsl(query, keep_blank_values=True)]
        if any(name.lower() in NEVER_RECORDED for name in names):
            return None  # a credential in the URL: the view records the request without it
        if "_format" in names or "_pretty" in names:
            return None  # the view judges the format (406 for what this server does not speak)
        with self.app.app_context():
            upstream = connected_upstream(hospital_id)  # as of the request's revocation epoch
            if upstream is None:
                return None
            try:
                claims = verified_claims(environ.get("HTTP_AUTHORIZATION"), hospital_id)
                principal = principal_for(
                    claims, hospital_id,
                    api_key=environ.get("HTTP_X_API_KEY"), api_secret=environ.get("HTTP_X_API_SECRET"),
                )  # fmt: skip
                if principal.kind != APPLICATION or principal.patient_id is not None:
                    return None
                policy = AccessPolicy(principal)
                if policy.require(interaction, resource_type) is not None:
                    return None  # a search restriction: the view refuses it
                if included_types(parse_qsl(query, keep_blank_values=True)):
                    return None  # what an include adds is checked by the view
                opened = opened_credentials(principal, upstream, key_from_token(claims))
            except (InvalidTokenError, IntegrationDenied, FhirError):
                return None
            share = self.app.extensions["fhirgate_fair_share"]
            limits = share.fresh_limits(hospital_id)
            if limits is None:
                return None
            admitted = share.admit(
                limits, hospital_id, principal.client_id, _WEIGHTS[interaction], heavy=False
            )
            if not isinstance(admitted, Admission):
                return None
            # Sent from here on: whatever comes back is answered here.
            below = environ["PATH_INFO"][len(f"/fhir/{hospital_id}") :] + (f"?{query}" if query else "")
            # As the view forwards them (FORWARDED_REQUEST_HEADERS; plain_request left out the
            # conditional ones, a GET has no body).
            forwarded = {
                name: environ[key]
                for name, key in (("Accept", "HTTP_ACCEPT"), ("Prefer", "HTTP_PREFER"))
                if key in environ
            }
            endpoint = "fhir.read" if resource_id is not None else "fhir.search"
            facts = fast_path_facts(
                environ,
                hospital_id,
                principal,
                endpoint,
                resource_type,
                resource_id=resource_id,
                query=query[:1000],
            )
            try:
                try:
                    proxied = shaped(
                        upstream, exchange(upstream, opened, "GET", below, forwarded, None), policy
                    )
                except FhirError:
                    raise
                except Exception as unexpected:  # noqa: BLE001 - sent already: never to the view (it would send again)
                    log.warning("upstream fast path failed after sending (%s)", type(unexpected).__name__)
                    raise FhirError(
                        502, [Issue("transient", "The upstream EHR's answer could not be used.")]
                    ) from None
            except FhirError as error:
                facts.status = error.status
                audit_writer().record(facts)
                body = orjson.dumps(error.outcome())
                headers = [
                    _OUTCOME_TYPE,
                    ("Content-Length", str(len(body))),
                    NO_STORE,
                    *error.headers.items(),
                ]
                return body, headers, f"{error.status} {_reason(error.status)}"
            facts.status = proxied.status
            facts.references = proxied.references
            audit_writer().record(facts)
        headers = [*proxied.headers.items(), ("Content-Length", str(len(proxied.body))), NO_STORE]
        return proxied.body, headers, f"{proxied.status} {_reason(proxied.status)}"


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
