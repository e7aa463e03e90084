"""A SMART App Launch (standalone patient launch) client for fhirgate, with Authlib's
``OAuth2Session``: authorization code with PKCE (S256), a confidential client.

    python docs/examples/patient_app.py --client-id app_… --client-secret apps_… \\
        --server http://127.0.0.1:8000 --hospital sandbox

It reads the hospital's ``.well-known/smart-configuration``, prints the authorization URL for
the patient to open (and opens it in a browser if one is at hand), waits on
http://127.0.0.1:8765/callback — the redirect URI the application registered (http is allowed
on loopback only) — for the patient's decision, trades the code for tokens, reads the patient's
record with the access token, and refreshes it once.
"""

from __future__ import annotations

import argparse
import http.server
import threading
import webbrowser

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

CALLBACK_PORT = 8765
REDIRECT_URI = f"http://127.0.0.1:{CALLBACK_PORT}/callback"
SCOPE = "launch/patient openid fhirUser offline_access patient/*.rs"


def wait_for_redirect() -> str:
    """Serve one request on the redirect URI and return its full URL."""
    arrived: dict[str, str] = {}

    class Callback(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server name
            arrived["url"] = f"http://127.0.0.1:{CALLBACK_PORT}{self.path}"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"Done: you can close this page and go back to the terminal.")

        def log_message(self, *args):
            pass

    with http.server.HTTPServer(("127.0.0.1", CALLBACK_PORT), Callback) as server:
        while "url" not in arrived:
            server.handle_request()
    return arrived["url"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--server", default="http://127.0.0.1:8000")
    parser.add_argument("--hospital", default="sandbox")
    args = parser.parse_args()

    fhir_base = f"{args.server}/fhir/{args.hospital}"
    smart = requests.get(f"{fhir_base}/.well-known/smart-configuration", timeout=10).json()
    session = OAuth2Session(
        args.client_id,
        args.client_secret,
        scope=SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    verifier = generate_token(64)
    url, _state = session.create_authorization_url(
        smart["authorization_endpoint"], code_verifier=verifier, aud=fhir_base
    )
    print(f"Open this page, log in as the patient and approve:\n\n  {url}\n", flush=True)
    threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()

    back = wait_for_redirect()
    token = session.fetch_token(smart["token_endpoint"], authorization_response=back, code_verifier=verifier)
    print(f"granted: {token['scope']}")
    # What the patient left ticked, which a refresh may ask for again (RFC 6749 §6), but no more.
    session.scope = token["scope"]
    print(f"patient: {token['patient']}, access token for {token['expires_in']} s, refresh token: yes")

    patient = session.get(f"{fhir_base}/Patient/{token['patient']}", timeout=10).json()
    print(f"read: Patient/{patient['id']} ({patient.get('birthDate', 'no birth date')})")
    observations = session.get(f"{fhir_base}/Observation", params={"patient": token["patient"]}, timeout=10)
    found = observations.json().get("total")
    print(f"search: Observation?patient= → {observations.status_code}, {found} found")

    refreshed = session.refresh_token(smart["token_endpoint"])
    print(f"refreshed: a new access token for {refreshed['expires_in']} s, and a new refresh token")


if __name__ == "__main__":
    main()
