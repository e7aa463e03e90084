"""A SMART App Launch driven through the test client: the app's authorization request, the
patient's consent form, the code exchange. Shared by the launch tests."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from tests.conftest import BASE_URL, basic_auth

REDIRECT = "https://app.example/callback"
AUD = f"{BASE_URL}/fhir/general"
STANDALONE_SCOPE = (
    "launch/patient offline_access patient/Patient.rs patient/Observation.rs patient/Condition.rs"
)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(55)[:73]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class _Form(HTMLParser):
    """The hidden fields and checkbox values of the consent form."""

    def __init__(self):
        super().__init__()
        self.hidden: dict[str, str] = {}
        self.grants: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag != "input":
            return
        if attributes.get("type") == "hidden":
            self.hidden[attributes["name"]] = attributes.get("value", "")
        elif attributes.get("name") == "grant":
            self.grants.append(attributes["value"])


def consent_form(html: str) -> _Form:
    form = _Form()
    form.feed(html)
    return form


def query_of(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


@dataclass
class Launch:
    client_id: str
    secret: str | None
    scope: str = STANDALONE_SCOPE
    aud: str = AUD
    redirect_uri: str = REDIRECT
    state: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    verifier: str = ""
    challenge: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.verifier:
            self.verifier, self.challenge = pkce_pair()

    def parameters(self) -> dict:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "aud": self.aud,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        params.update(self.extra)
        return {key: value for key, value in params.items() if value is not None}

    def authorize_url(self) -> str:
        return "/oauth/authorize?" + urlencode(self.parameters())

    def consent(self, browser):
        """The consent page, as the signed-in patient's browser gets it."""
        page = browser.get(self.authorize_url())
        assert page.status_code == 200, page.get_data(as_text=True)[:500]
        return page

    def decide(self, browser, *, untick=(), expiry="1y", decision="approve", form_overrides=None):
        """Submit the consent form as the patient would; returns the response (a redirect)."""
        form = consent_form(self.consent(browser).get_data(as_text=True))
        data = dict(form.hidden)
        data.update(form_overrides or {})
        data["grant"] = [scope for scope in form.grants if scope not in untick]
        data["expiry"] = expiry
        data["decision"] = decision
        return browser.post("/oauth/authorize/decision", data=data)

    def code(self, browser, **kwargs) -> str:
        response = self.decide(browser, **kwargs)
        assert response.status_code == 303, response.get_data(as_text=True)[:500]
        params = query_of(response.headers["Location"])
        assert params["state"] == self.state and params["iss"] == BASE_URL, params
        return params["code"]

    def exchange(self, client, code: str, **overrides):
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": self.verifier,
        }
        headers = {}
        if self.secret is None:
            form["client_id"] = self.client_id
        else:
            headers = basic_auth(self.client_id, self.secret)
        form.update(overrides)
        form = {key: value for key, value in form.items() if value is not None}
        return client.post("/oauth/token", data=form, headers=headers)

    def refresh(self, client, refresh_token: str, *, authenticate=True, **extra):
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
        headers = {}
        if self.secret is None or not authenticate:
            form["client_id"] = self.client_id
        else:
            headers = basic_auth(self.client_id, self.secret)
        return client.post("/oauth/token", data=form, headers=headers)


def smart_app(make, *, public: bool = False, **registration):
    """A registered application with the example redirect URI."""
    extra = {"redirect_uris": [REDIRECT], "name": "Steps", "publisher": "Example Health", **registration}
    if public:
        extra["token_endpoint_auth_method"] = "none"
    return make.application(**extra)


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class LiveResponse:
    """A ``requests`` response with the parts of Flask's test response these tests read."""

    def __init__(self, response: requests.Response):
        self._response = response
        self.status_code = response.status_code
        self.headers = response.headers
        self.mimetype = response.headers.get("Content-Type", "").split(";")[0].strip()

    def get_json(self):
        return self._response.json()

    def get_data(self, as_text: bool = False):
        return self._response.text if as_text else self._response.content


class LiveClient:
    """The test client's interface over HTTP to a running server, keeping cookies and never
    following redirects, so that the same tests run against a real socket."""

    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()

    def _send(self, method: str, path: str, **kwargs) -> LiveResponse:
        url = path if path.startswith("http") else self.base + path
        return LiveResponse(self.session.request(method, url, allow_redirects=False, timeout=15, **kwargs))

    def get(self, path: str, **kwargs) -> LiveResponse:
        return self._send("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> LiveResponse:
        return self._send("POST", path, **kwargs)

    def options(self, path: str, **kwargs) -> LiveResponse:
        return self._send("OPTIONS", path, **kwargs)
