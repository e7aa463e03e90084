"""FHIR requests to a connected hospital, forwarded to its upstream EHR.

The caller is authenticated and admitted as for the local store (its share, its scopes through
``AccessPolicy``) before anything is sent: a request its scopes do not allow gets the same 403
and never reaches the upstream. Then the application's EHR credentials are opened with the key
the request brought (``app.integrations.gateway``), and the request goes upstream with them:
the same method, path below the hospital's base, query and body, and only the headers FHIR
defines for it. The answer comes back with every URL of the upstream rewritten to this
hospital's base (``fullUrl``, links, references, ``Location``), and is audited here like any
other. What cannot be honoured is refused rather than passed on silently: a scope with a
search restriction (the upstream would not apply it), Bulk Data (its status and files would
live upstream), a patient's or clinician's token (the upstream knows nothing of them).

Failures upstream become OperationOutcomes that name no credential: 504 when it does not answer
within ``FHIRGATE_UPSTREAM_TIMEOUT_S``, 502 when its answer is an error, a redirect, too large
(``FHIRGATE_UPSTREAM_MAX_BYTES``) or not FHIR JSON, and 403 when it refuses the credentials.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

import orjson
from flask import Response, current_app, g, request

from app.integrations.gateway import (
    IntegrationDenied,
    Opened,
    key_from_passphrase,
    key_from_token,
    opened_credentials,
    principal_from_secret,
)
from app.integrations.upstream_auth import Upstream, UpstreamRefusal, UpstreamTokens
from app.integrations.upstream_http import Answer, UpstreamFailure, UpstreamHttp
from fhir.access import current_principal
from fhir.capability import security
from fhir.errors import FhirError, Issue
from fhir.fair_share import admit_fair_share
from fhir.http import base_url
from fhir.policy import AccessPolicy
from fhir.response_size import note_references
from fhir.version import FHIR_JSON
from oauth import APPLICATION, Principal, verified_claims

TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{1,63}")
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # R4B datatypes.html#id
# The request headers FHIR's RESTful API defines, passed on; nothing else (no cookie, no token).
FORWARDED_REQUEST_HEADERS = (
    "Accept", "Content-Type", "Prefer", "If-Match", "If-None-Match", "If-None-Exist", "If-Modified-Since",
)  # fmt: skip
RETURNED_HEADERS = ("ETag", "Last-Modified", "Location", "Content-Location")
METADATA_TTL_S = 300
BULK_ENDPOINTS = frozenset(
    {"fhir.bulk_export_system", "fhir.bulk_export_patient", "fhir.bulk_export_group", "fhir.bulk_status",
     "fhir.bulk_cancel", "fhir.bulk_file"}
)  # fmt: skip
# endpoint → (interaction, whether the resource type is the URL's; else every type: "*")
_ENDPOINTS = {
    "fhir.read": ("read", True),
    "fhir.vread": ("read", True),
    "fhir.search": ("search", True),
    "fhir.search_post": ("search", True),
    "fhir.compartment_search": ("search", True),
    "fhir.system_search": ("search", False),
    "fhir.system_search_post": ("search", False),
    "fhir.instance_history": ("history", True),
    "fhir.type_history": ("history", True),
    "fhir.hospital_history": ("history", False),
    "fhir.everything": ("search", False),
    "fhir.create": ("create", True),
    "fhir.update": ("update", True),
    "fhir.conditional_update_route": ("update", True),
    "fhir.patch": ("patch", True),
    "fhir.delete": ("delete", True),
    "fhir.conditional_delete_route": ("delete", True),
}
_ENTRY_INTERACTIONS = {"GET": "read", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class UpstreamProxy:
    """Per worker: the pooled HTTP client, the upstream token cache, the upstreams' metadata."""

    def __init__(self) -> None:
        self.http = UpstreamHttp()
        self.tokens = UpstreamTokens(self.http)
        self._metadata: dict[tuple[str, str], tuple[bytes, float]] = {}  # by (hospital, upstream URL)
        self._lock = threading.Lock()


def upstream_proxy() -> UpstreamProxy:
    return current_app.extensions["fhirgate_upstream_proxy"]


def init_upstream_proxy(app) -> None:
    app.extensions["fhirgate_upstream_proxy"] = UpstreamProxy()


def _failure(status: int, code: str, message: str) -> FhirError:
    return FhirError(status, [Issue(code, message)])


def _principal_and_key(upstream: Upstream) -> tuple[Principal, bytes | None]:
    client_id = request.headers.get("X-Client-Id")
    secret = request.headers.get("X-Client-Secret")
    if client_id is not None or secret is not None:
        if not client_id or not secret or request.headers.get("Authorization"):
            raise _failure(
                401, "login", "Send X-Client-Id with X-Client-Secret, or a Bearer token, not a mix of them."
            )
        try:
            return principal_from_secret(client_id, secret, upstream.hospital_id, request.remote_addr)
        except IntegrationDenied as denied:
            raise _denied(denied) from None
    principal = current_principal(upstream.hospital_id)
    passphrase = request.headers.get("X-Integration-Passphrase")
    if passphrase is not None:
        try:
            return principal, key_from_passphrase(principal, passphrase, request.remote_addr)
        except IntegrationDenied as denied:
            raise _denied(denied) from None
    claims = verified_claims(request.headers.get("Authorization"), upstream.hospital_id)
    return principal, key_from_token(claims)


def _denied(denied: IntegrationDenied) -> FhirError:
    headers = {}
    if denied.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="fhirgate", error="invalid_token"'
    if denied.retry_after is not None:
        headers["Retry-After"] = str(denied.retry_after)
    code = {401: "login", 403: "forbidden", 429: "throttled"}.get(denied.status, "forbidden")
    return FhirError(denied.status, [Issue(code, str(denied))], headers)


def _check_scopes(principal: Principal, endpoint: str) -> str:
    """The interaction, once the caller's scopes allow it (for a Bundle: every entry)."""
    if endpoint in BULK_ENDPOINTS:
        raise _failure(501, "not-supported", "Bulk Data export is not available for a connected hospital.")
    if principal.kind != APPLICATION or principal.patient_id is not None:
        raise _failure(
            403, "forbidden", "A connected hospital is reached by applications with system scopes only."
        )
    policy = AccessPolicy(principal)
    if endpoint == "fhir.batch_or_transaction":
        for interaction, resource_type in _bundle_requests():
            _require(policy, interaction, resource_type)
        return "transaction"
    if endpoint not in _ENDPOINTS:
        raise _failure(501, "not-supported", "This interaction is not available for a connected hospital.")
    view_args = request.view_args or {}
    # Only a type's name and FHIR ids in the path: anything else (``_search``, ``$op``, an encoded
    # ``?``, ``..``) would make the upstream do more than the scopes were checked for.
    if "resource_type" in view_args and not TYPE_NAME.fullmatch(view_args["resource_type"]):
        raise _failure(404, "not-found", "Unknown resource type.")
    for name in ("resource_id", "patient_id", "version"):
        if name in view_args and not _plain_id(view_args[name]):
            raise _failure(404, "not-found", f"Not a FHIR id: {name}.")
    interaction, typed = _ENDPOINTS[endpoint]
    resource_type = view_args.get("resource_type") if typed else "*"
    _require(policy, interaction, resource_type or "*")
    pairs = list(request.args.items(multi=True))
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        pairs += list(request.form.items(multi=True))  # POST _search: its parameters in the body
    condition = request.headers.get("If-None-Exist")
    if condition is not None:  # a conditional create searches before it writes
        pairs += parse_qsl(condition, keep_blank_values=True)
    for included, included_type in included_types(pairs):
        _require(policy, included, included_type)
    return interaction


def _plain_id(value: str) -> bool:
    return bool(FHIR_ID.fullmatch(value)) and value not in (".", "..")


def _require(policy: AccessPolicy, interaction: str, resource_type: str) -> None:
    if policy.require(interaction, resource_type) is not None:
        raise _failure(
            403,
            "forbidden",
            f"A scope with a search restriction cannot be enforced at a connected hospital "
            f"({interaction} {resource_type}).",
        )


def _bundle_requests() -> list[tuple[str, str]]:
    """What each entry of a batch or transaction asks: (interaction, resource type) pairs."""
    try:
        bundle = orjson.loads(request.get_data())
    except orjson.JSONDecodeError:
        raise _failure(400, "structure", "The body is not a JSON Bundle.") from None
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    if not isinstance(entries, list):
        raise _failure(400, "structure", "A batch or transaction Bundle needs its entries.")
    asked = []
    for entry in entries:
        step = entry.get("request") if isinstance(entry, dict) else None
        method = step.get("method") if isinstance(step, dict) else None
        url = step.get("url") if isinstance(step, dict) else None
        if (
            not isinstance(method, str)
            or method not in _ENTRY_INTERACTIONS
            or not isinstance(url, str)
            or not url
        ):
            raise _failure(400, "structure", "Every entry needs request.method and request.url.")
        asked += _entry_asks(method, url)
    return asked


def _entry_asks(method: str, url: str) -> list[tuple[str, str]]:
    """(interaction, type) pairs an entry's request needs. Only the plain forms name their type
    (``Type``, ``Type/id``, ``Type/_history``, ``Type/id/_history[/v]``, ``Type/_search``); any
    other — an absolute URL, an operation, a compartment, the whole server — needs ``*``."""
    target, _, query = url.partition("?")
    path = target.strip("/").split("/")
    interaction = _ENTRY_INTERACTIONS[method]
    if "://" in url or not TYPE_NAME.fullmatch(path[0]):
        return [(interaction, "*")]
    resource_type, rest = path[0], path[1:]
    searched = [("search", resource_type), *included_types(parse_qsl(query, keep_blank_values=True))]
    ids = rest[:1] and _plain_id(rest[0])
    if method == "GET":
        if rest in ([], ["_history"]):
            return searched
        if len(rest) == 1 and ids:
            return [("read", resource_type)]
        if len(rest) == 2 and ids and rest[1] == "_history":
            return [("search", resource_type)]  # an instance's history
        if len(rest) == 3 and ids and rest[1] == "_history" and _plain_id(rest[2]):
            return [("read", resource_type)]
        return [("search", "*")]
    if method == "POST" and rest == ["_search"]:
        return searched
    if rest == [] or (len(rest) == 1 and ids and method != "POST"):
        conditional = [] if rest else included_types(parse_qsl(query, keep_blank_values=True))
        return [(interaction, resource_type), *conditional]
    return [(interaction, "*")]


def included_types(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The other types a search reaches: those its ``_include`` and ``_revinclude`` add to its
    answer (a revinclude's source type, an include's target type when it names one) and those
    its ``_has`` and chained parameters search (every ``_has:Type:…`` and ``param:Type.…`` hop);
    ``*`` where a type is not named, and for ``_filter`` (an expression over any type)."""
    asks = []
    for name, value in pairs:
        if name.startswith("_has:"):
            parts = name.split(":")
            for n, part in enumerate(parts[:-1]):
                if part == "_has":
                    source = parts[n + 1]
                    asks.append(("search", source if TYPE_NAME.fullmatch(source) else "*"))
        elif "." in name and not name.startswith("_"):
            for link in name.split(".")[:-1]:
                target = link.split(":", 1)[1] if ":" in link else ""
                asks.append(("search", target if TYPE_NAME.fullmatch(target) else "*"))
        elif name.startswith("_filter") or name.startswith("_query"):
            asks.append(("search", "*"))
        if name.startswith("_revinclude"):
            source = value.split(":", 1)[0]
            asks.append(("search", source if TYPE_NAME.fullmatch(source) else "*"))
        elif name.startswith("_include"):
            parts = value.split(":")
            asks.append(("search", parts[2] if len(parts) > 2 and TYPE_NAME.fullmatch(parts[2]) else "*"))
    return asks


def _returned_types_allowed(policy: AccessPolicy, document: dict) -> None:
    """The answer may hold only what the application may read: a backstop for whatever an
    upstream returns beyond what was asked (an include, a compartment, an operation)."""
    resources = [document]
    if document.get("resourceType") == "Bundle":
        entries = document.get("entry")
        if entries is not None and not isinstance(entries, list):
            raise _failure(502, "transient", "The upstream EHR's Bundle is not valid FHIR.")
        resources = [entry.get("resource") for entry in entries or [] if isinstance(entry, dict)]
    refused = set()
    for resource in resources:
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if kind in (None, "OperationOutcome", "Bundle"):
            continue
        try:
            if policy.require("read", kind) is not None:
                refused.add(kind)  # a restricted scope: not enforceable here
        except FhirError:
            refused.add(kind)
    if refused:
        raise _failure(
            403,
            "forbidden",
            "The upstream EHR answered resources this application's scopes do not cover: "
            f"{', '.join(sorted(refused))}.",
        )


def forward(upstream: Upstream) -> Response:
    """Answer this request from the hospital's upstream (see the module's docstring)."""
    endpoint = request.endpoint or ""
    if endpoint == "fhir.metadata":
        return _metadata(upstream)
    principal, key = _principal_and_key(upstream)
    g.fhir_principal = principal
    interaction = _check_scopes(principal, endpoint)
    admit_fair_share(principal, interaction, heavy=False)
    try:
        opened = opened_credentials(principal, upstream, key)
    except IntegrationDenied as denied:
        raise _denied(denied) from None
    headers = {name: request.headers[name] for name in FORWARDED_REQUEST_HEADERS if name in request.headers}
    body = request.get_data() if request.method in ("POST", "PUT", "PATCH") else None
    answer = exchange(upstream, opened, request.method, _below_base(upstream.hospital_id), headers, body)
    proxied = shaped(upstream, answer, AccessPolicy(principal))
    note_references(proxied.references)
    return Response(proxied.body, status=proxied.status, headers=proxied.headers)


def exchange(
    upstream: Upstream,
    opened: Opened,
    method: str,
    below_base: str,
    headers: dict[str, str],
    body: bytes | None,
) -> Answer:
    """The upstream's answer to the request, sent with the opened credentials (a cached upstream
    token that the upstream refuses is dropped and the request sent once more with a new one);
    ``FhirError`` when the upstream cannot be used."""
    proxy = upstream_proxy()
    config = current_app.config
    timeout_s = config["FHIRGATE_UPSTREAM_TIMEOUT_S"]
    local_ok = config["FHIRGATE_UPSTREAM_LOCAL_OK"]
    started = time.monotonic()
    headers = {"Accept": FHIR_JSON, **headers}
    url = upstream.base_url + below_base
    try:
        for attempt in (1, 2):
            remaining = timeout_s - (time.monotonic() - started)
            credentials = proxy.tokens.headers(
                upstream, opened.credentials, opened.sealed_id, timeout_s=remaining, local_ok=local_ok
            )
            answer = proxy.http.request(
                method,
                url,
                headers={**headers, **credentials},
                body=body,
                timeout_s=timeout_s - (time.monotonic() - started),
                max_bytes=config["FHIRGATE_UPSTREAM_MAX_BYTES"],
                local_ok=local_ok,
            )
            if answer.status == 401 and attempt == 1 and upstream.token_url:
                proxy.tokens.forget(upstream, opened.sealed_id)  # revoked early: one new token, once
                continue
            return answer
    except UpstreamRefusal as refusal:
        raise _failure(
            403, "forbidden", f"The upstream EHR refused this application's EHR credentials: {refusal}."
        ) from None
    except UpstreamFailure as failure:
        if failure.timeout:
            raise _failure(504, "timeout", f"The upstream EHR did not answer in time: {failure}.") from None
        raise _failure(502, "transient", f"The upstream EHR could not be used: {failure}.") from None
    raise AssertionError("unreachable")


def _below_base(hospital_id: str) -> str:
    """The request's path below ``/fhir/{hospital}`` and its query, as the client sent them."""
    path = request.path[len(f"/fhir/{hospital_id}") :]
    query = request.query_string.decode("latin-1")
    return path + (f"?{query}" if query else "")


@dataclass(frozen=True)
class Proxied:
    """The answer for the client: the upstream's, with this hospital's URLs."""

    status: int
    headers: dict[str, str]
    body: bytes
    references: list[str]  # the resources a Bundle carried (for the AuditEvent)


def shaped(upstream: Upstream, answer: Answer, policy: AccessPolicy | None) -> Proxied:
    """The upstream's answer as this hospital's; ``FhirError`` for what cannot be passed on
    (``policy``: the caller's, which every resource in it must satisfy; None for metadata)."""
    status = answer.status
    if 300 <= status < 400 and status != 304:
        raise _failure(
            502, "transient", f"The upstream EHR answered with a redirect (HTTP {status}), not followed."
        )
    if status in (401, 403):
        raise _failure(
            403,
            "forbidden",
            f"The upstream EHR refused the request with this application's credentials (HTTP {status}).",
        )
    if status >= 500:
        raise _failure(502, "transient", f"The upstream EHR failed (HTTP {status}).")
    ours = base_url(upstream.hospital_id)
    headers = {}
    for name in RETURNED_HEADERS:
        value = answer.header(name)
        if value is not None:
            headers[name] = _rewritten(value, upstream.base_url, ours)
    if not answer.body:
        return Proxied(status, headers, b"", [])
    try:
        document = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        raise _failure(502, "transient", "The upstream EHR's answer is not JSON.") from None
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise _failure(502, "transient", "The upstream EHR's answer is not a FHIR resource.")
    if policy is not None:
        _returned_types_allowed(policy, document)
    references = _bundle_references(document) if document["resourceType"] == "Bundle" else []
    headers["Content-Type"] = f"{FHIR_JSON}; charset=utf-8"
    theirs = upstream.base_url.encode()
    if theirs not in answer.body and theirs.replace(b"/", b"\\/") not in answer.body:
        return Proxied(status, headers, answer.body, references)  # no URL of theirs: as it came
    return Proxied(status, headers, orjson.dumps(_rewrite(document, upstream.base_url, ours)), references)


def _bundle_references(bundle: dict) -> list[str]:
    references = []
    entries = bundle.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and isinstance(resource.get("id"), str):
            references.append(f"{resource.get('resourceType')}/{resource['id']}")
    return references


def _rewritten(text: str, theirs: str, ours: str) -> str:
    if text == theirs or text.startswith(theirs + "/") or text.startswith(theirs + "?"):
        return ours + text[len(theirs) :]
    return text


def _rewrite(value, theirs: str, ours: str):
    """Every string that is a URL of the upstream's base, pointed at this hospital's."""
    if isinstance(value, str):
        return _rewritten(value, theirs, ours)
    if isinstance(value, list):
        return [_rewrite(item, theirs, ours) for item in value]
    if isinstance(value, dict):
        return {key: _rewrite(item, theirs, ours) for key, item in value.items()}
    return value


def _metadata(upstream: Upstream) -> Response:
    """The upstream's CapabilityStatement, rewritten to this base and fetched at most every
    ``METADATA_TTL_S`` (it is public, like ours)."""
    proxy = upstream_proxy()
    now = time.monotonic()
    with proxy._lock:
        cached = proxy._metadata.get((upstream.hospital_id, upstream.base_url))
    if cached is None or cached[1] <= now:
        config = current_app.config
        try:
            answer = proxy.http.request(
                "GET",
                upstream.base_url + "/metadata",
                headers={"Accept": FHIR_JSON},
                timeout_s=config["FHIRGATE_UPSTREAM_TIMEOUT_S"],
                max_bytes=config["FHIRGATE_UPSTREAM_MAX_BYTES"],
                local_ok=config["FHIRGATE_UPSTREAM_LOCAL_OK"],
            )
        except UpstreamFailure as failure:
            raise _failure(
                504 if failure.timeout else 502, "transient", f"The upstream EHR's metadata: {failure}."
            ) from None
        if answer.status != 200:
            raise _failure(502, "transient", f"The upstream EHR's metadata answered HTTP {answer.status}.")
        try:
            statement = orjson.loads(shaped(upstream, answer, None).body)
            if statement.get("resourceType") != "CapabilityStatement":
                raise ValueError
            cached = (orjson.dumps(_as_ours(statement, upstream.hospital_id)), now + METADATA_TTL_S)
        except (ValueError, TypeError, AttributeError):  # (orjson's decode error is a ValueError)
            raise _failure(
                502, "transient", "The upstream EHR's metadata is not a CapabilityStatement."
            ) from None
        with proxy._lock:
            proxy._metadata[(upstream.hospital_id, upstream.base_url)] = cached
    return Response(cached[0], status=200, headers={"Content-Type": f"{FHIR_JSON}; charset=utf-8"})


def _as_ours(statement: dict, hospital_id: str) -> dict:
    """The upstream's CapabilityStatement as this hospital's: what the upstream serves, with this
    server's security (its tokens) and formats (JSON), and without what the proxy does not
    forward: of the operations only ``Patient/$everything`` has a route here (Bulk Data is
    refused, and any other ``$`` path is no id)."""
    statement["implementation"] = {
        "description": f"FHIR server of hospital {hospital_id}, served by its upstream EHR",
        "url": base_url(hospital_id),
    }
    statement["kind"] = "instance"
    statement["instantiates"] = [
        url for url in statement.get("instantiates") or [] if "bulkdata" not in url.lower()
    ] or None
    statement["format"] = [FHIR_JSON, "json"]
    for rest in statement.get("rest") or []:
        rest["security"] = security()
        rest["operation"] = None
        for resource in rest.get("resource") or []:
            operations = resource.get("operation") or [] if resource.get("type") == "Patient" else []
            resource["operation"] = [op for op in operations if op.get("name") == "everything"] or None
    return _without_nulls(statement)


def _without_nulls(value):
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value
