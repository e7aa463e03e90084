"""What an application registers for the SMART App Launch (RFC 7591 client metadata names).

``redirect_uris`` are matched exactly at the authorization endpoint (RFC 9700 §2.1): each is an
absolute https URI, or http on a loopback host for native apps (RFC 8252 §7.3), with no
fragment (RFC 6749 §3.1.2). ``launch_uri`` (where an EHR launch sends the app) and
``client_uri`` (its homepage, shown to the patient) follow the same rule; ``publisher`` names who
makes the app. ``token_endpoint_auth_method`` ``none`` registers a public client: no secret, no
keys, PKCE only.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.unstorable import URL_UNSTORABLE


def _clean(text: str) -> bool:
    return URL_UNSTORABLE.search(text) is None


MAX_REDIRECT_URIS = 20
MAX_URI_LENGTH = 2048
PUBLIC_CLIENT = "none"
AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post", "private_key_jwt")


class RegistrationError(ValueError):
    """Client metadata that cannot be registered; the message names the field."""


# OpenID Connect Dynamic Registration's ``id_token_signed_response_alg`` (RS256 by default, as
# Core §15.1 requires), and the same choice for access tokens (ES256 by default; RS256 for
# resource servers that verify only what RFC 9068 §2.1 requires everyone to support).
SIGNING_ALGORITHMS = ("RS256", "ES256")
ALGORITHM_FIELDS = ("id_token_signed_response_alg", "access_token_signed_response_alg")


@dataclass(frozen=True)
class Metadata:
    redirect_uris: tuple[str, ...] | None = None
    launch_uri: str | None = None
    client_uri: str | None = None
    publisher: str | None = None
    id_token_signed_response_alg: str | None = None
    access_token_signed_response_alg: str | None = None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def uri_problem(uri: object) -> str | None:
    """What keeps ``uri`` from being a redirect, launch or home page URI, or None."""
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI_LENGTH or not _clean(uri):
        return f"must be a URI of at most {MAX_URI_LENGTH} characters"
    if any(ch.isspace() for ch in uri):
        return "must not contain spaces"
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
        parts.port  # noqa: B018 — raises on a port that is no number
    except ValueError:
        return "is not a valid URI"
    if parts.fragment or "#" in uri:
        return "must not have a fragment"
    if not host or parts.username is not None or parts.password is not None:
        return "must be an absolute URI with a host and no user information"
    if parts.scheme == "https" or (parts.scheme == "http" and _loopback(host)):
        return None
    return "must use https (http only on a loopback host: localhost, 127.0.0.1, [::1])"


def registration_metadata(body: dict, *, public: bool) -> Metadata:
    """The SMART metadata of a registration body (only the fields it holds)."""
    found = {}
    if "redirect_uris" in body:
        uris = body["redirect_uris"]
        if not isinstance(uris, list) or len(uris) > MAX_REDIRECT_URIS:
            raise RegistrationError(f"'redirect_uris' must be a list of at most {MAX_REDIRECT_URIS} URIs.")
        for uri in uris:
            if problem := uri_problem(uri):
                raise RegistrationError(f"Each of 'redirect_uris' {problem}: {str(uri)[:100]!r}.")
        found["redirect_uris"] = tuple(dict.fromkeys(uris))
    for name in ("launch_uri", "client_uri"):
        if name in body and body[name] is not None:
            if problem := uri_problem(body[name]):
                raise RegistrationError(f"'{name}' {problem}.")
            found[name] = body[name]
    if "publisher" in body and body["publisher"] is not None:
        publisher = body["publisher"]
        if (
            not isinstance(publisher, str)
            or not publisher.strip()
            or len(publisher) > 200
            or not _clean(publisher)
        ):
            raise RegistrationError("'publisher' must be a non-empty string of at most 200 characters.")
        found["publisher"] = publisher.strip()
    for name in ALGORITHM_FIELDS:
        if name in body and body[name] is not None:
            if body[name] not in SIGNING_ALGORITHMS:
                raise RegistrationError(f"'{name}' must be one of {', '.join(SIGNING_ALGORITHMS)}.")
            found[name] = body[name]
    if public and not found.get("redirect_uris"):
        raise RegistrationError(
            "A public client ('token_endpoint_auth_method': 'none') needs 'redirect_uris'."
        )
    return Metadata(**found)
