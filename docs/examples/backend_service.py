"""A SMART Backend Services client for fhirgate, using only the standard library and `cryptography`.

    python docs/examples/backend_service.py keygen backend-key.pem > backend-jwks.json
    python docs/examples/backend_service.py token --key backend-key.pem --client-id app_… \\
        --server http://127.0.0.1:8000 --hospital sandbox

`keygen` writes an EC P-384 private key (PEM) and prints its public JWK Set, to be registered
for the application (developer portal, or `POST /api/apps` with `"jwks"`). `token` reads the
server's `.well-known/smart-configuration`, signs a client assertion (ES384, five minutes,
a fresh `jti`), trades it for an access token and reads one Patient with it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import time
import urllib.parse
import urllib.request
import uuid

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(private_key: ec.EllipticCurvePrivateKey) -> dict:
    numbers = private_key.public_key().public_numbers()
    x, y = (b64url(value.to_bytes(48, "big")) for value in (numbers.x, numbers.y))
    jwk = {"crv": "P-384", "kty": "EC", "x": x, "y": y}
    # RFC 7638 thumbprint as the key id: stable, and a new key gets a new one.
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    return {**jwk, "kid": b64url(hashlib.sha256(canonical).digest()), "alg": "ES384", "use": "sig"}


def keygen(path: str) -> None:
    private_key = ec.generate_private_key(ec.SECP384R1())
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Readable by its owner only: whoever reads it can act as the application.
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
        handle.write(pem)
    print(json.dumps({"keys": [public_jwk(private_key)]}, indent=2))


def client_assertion(private_key: ec.EllipticCurvePrivateKey, client_id: str, token_url: str) -> str:
    header = {"alg": "ES384", "typ": "JWT", "kid": public_jwk(private_key)["kid"]}
    now = int(time.time())
    # SMART: iss = sub = the client id, aud = the token endpoint, exp at most five minutes ahead.
    claims = {"iss": client_id, "sub": client_id, "aud": token_url, "exp": now + 300}
    claims["jti"] = str(uuid.uuid4())  # never reused: the server refuses a second use
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    r, s = decode_dss_signature(private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA384())))
    return f"{signing_input}.{b64url(r.to_bytes(48, 'big') + s.to_bytes(48, 'big'))}"


def get_json(url: str, data: bytes | None = None, headers: dict | None = None) -> dict:
    """GET (or POST ``data``) and parse the JSON answer; stop with the server's error otherwise."""
    if not url.startswith(("http://", "https://")):
        sys.exit(f"not an http(s) URL: {url}")
    headers = {"Accept": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - checked above
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.load(response)
    except urllib.error.HTTPError as error:
        sys.exit(f"{url}: HTTP {error.code} {error.read().decode()[:500]}")


def token(key_path: str, client_id: str, server: str, hospital: str) -> None:
    with open(key_path, "rb") as handle:
        private_key = serialization.load_pem_private_key(handle.read(), password=None)
    fhir_base = f"{server.rstrip('/')}/fhir/{hospital}"
    discovery = get_json(f"{fhir_base}/.well-known/smart-configuration")
    token_url = discovery["token_endpoint"]  # also the assertion's audience
    form = {
        "grant_type": "client_credentials",
        "scope": "system/Patient.rs",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(private_key, client_id, token_url),
    }
    # Posted to this server's own token route, so the example also works behind a port forward.
    answer = get_json(f"{server.rstrip('/')}/oauth/token", data=urllib.parse.urlencode(form).encode())
    print(f"token: {answer['token_type']}, expires_in {answer['expires_in']} s, scope {answer['scope']}")
    bearer = {"Authorization": f"Bearer {answer['access_token']}", "Accept": "application/fhir+json"}
    bundle = get_json(f"{fhir_base}/Patient?_count=1", headers=bearer)
    ids = [entry["resource"]["id"] for entry in bundle.get("entry", [])]
    print(f"read: Patient/{ids[0]}" if ids else f"read: no Patient in {hospital} yet")


def main() -> None:
    layout = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=layout)
    commands = parser.add_subparsers(dest="command", required=True)
    make_key = commands.add_parser("keygen", help="write a private key, print the public JWK Set")
    make_key.add_argument("path")
    get_token = commands.add_parser("token", help="get a token with a signed assertion and read a Patient")
    get_token.add_argument("--key", required=True)
    get_token.add_argument("--client-id", required=True)
    get_token.add_argument("--server", default="http://127.0.0.1:8000")
    get_token.add_argument("--hospital", default="sandbox")
    args = parser.parse_args()
    if args.command == "keygen":
        keygen(args.path)
    else:
        token(args.key, args.client_id, args.server, args.hospital)


if __name__ == "__main__":
    main()
