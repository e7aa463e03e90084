"""private_key_jwt with keys published at a ``jwks_uri``: fetched, cached, refetched, bounded.

The key host is a small HTTP server in the test (plain http on loopback, which only a
development configuration accepts; production rules are checked separately).
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from oauth import jwks_fetch
from oauth.jwks_fetch import JwksFetchError, fetch_jwks, jwks_uri_problem
from tests.oauth.signing import ClientKey, assertion_form
from tests.servers import jwks_host


@pytest.fixture
def host():
    with jwks_host() as serving:
        yield serving


@pytest.fixture
def developer(make):
    return make.as_role("developer")


@pytest.fixture
def key(host):
    signer = ClientKey("RS384")
    host.jwks = signer.jwks()
    return signer


@pytest.fixture
def registered(make, sandbox, developer, host, key):
    return make.application(developer, jwks_uri=host.url)


def token(client, signer: ClientKey, client_id: str):
    return client.post("/oauth/token", data=assertion_form(signer.assertion(client_id)))


def failure(developer, client_id: str) -> str:
    return developer.get(f"/api/apps/{client_id}").get_json()["last_assertion_failure"]["reason"]


def test_keys_are_fetched_once_and_cached(client, registered, host, key):
    assert registered.body["jwks_uri"] == host.url and registered.body["jwks"] is None
    for _ in range(3):
        response = token(client, key, registered.key)
        assert response.status_code == 200, response.get_json()
    assert host.fetches == 1


def test_no_store_means_a_fetch_per_assertion(client, registered, host, key):
    host.headers = {"Cache-Control": "no-store"}
    for _ in range(2):
        assert token(client, key, registered.key).status_code == 200
    assert host.fetches == 2


def test_an_expired_cache_entry_is_refetched(client, registered, host, key):
    host.headers = {"Cache-Control": "max-age=1"}
    assert token(client, key, registered.key).status_code == 200
    time.sleep(1.1)
    assert token(client, key, registered.key).status_code == 200
    assert host.fetches == 2


def test_a_client_side_key_rotation_needs_no_change_on_the_server(client, registered, host, key):
    assert token(client, key, registered.key).status_code == 200
    rotated = ClientKey("ES384")
    host.jwks = rotated.jwks()  # the client publishes its new key and drops the old one
    time.sleep(jwks_fetch.UNKNOWN_KID_REFETCH_S + 0.1)
    response = token(client, rotated, registered.key)
    assert response.status_code == 200, response.get_json()
    assert host.fetches == 2


def test_an_unknown_kid_refetches_at_most_once_a_second(client, developer, registered, host, key):
    assert token(client, key, registered.key).status_code == 200
    time.sleep(jwks_fetch.UNKNOWN_KID_REFETCH_S + 0.1)
    stranger = ClientKey("RS384")
    for _ in range(3):
        assert token(client, stranger, registered.key).status_code == 401
    assert host.fetches == 2
    assert "no key of the client's JWK Set fits" in failure(developer, registered.key)


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda host: setattr(host, "status", 404), "answered HTTP 404"),
        (lambda host: setattr(host, "body", b"x" * (70 * 1024)), "larger than 64 KiB"),
        (lambda host: setattr(host, "body", b"<html>keys</html>"), "not usable"),
        (lambda host: setattr(host, "jwks", {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}), "not usable"),
    ],
)
def test_unusable_key_hosts_are_refused(client, developer, registered, host, key, setup, reason):
    setup(host)
    response = token(client, key, registered.key)
    assert response.status_code == 401
    assert "jwks_uri could not be fetched" in response.get_json()["error_description"]
    assert reason in failure(developer, registered.key)


def test_a_slow_key_host_is_given_up_on(client, developer, registered, host, key, monkeypatch):
    monkeypatch.setattr(jwks_fetch, "TIMEOUT_S", 0.5)
    host.delay_s = 2
    started = time.monotonic()
    assert token(client, key, registered.key).status_code == 401
    assert time.monotonic() - started < 1.9
    reason = failure(developer, registered.key)
    assert "did not answer in time" in reason or "timed out" in reason


def test_a_set_with_other_keys_keeps_the_usable_ones(client, registered, host, key):
    host.jwks = {"keys": [{"kty": "OKP", "crv": "X25519", "x": "AAAA", "use": "enc"}, key.public_jwk]}
    assert token(client, key, registered.key).status_code == 200


# -- production rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "http://keys.example/jwks.json",
        "https://127.0.0.1/jwks.json",
        "https://[::1]/jwks.json",
        "https://10.1.2.3/jwks.json",
        "https://192.168.0.10/jwks.json",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/jwks.json",
        "https://user:pass@keys.example/jwks.json",
        "https://keys.example:99999/jwks.json",
    ],
)
def test_production_refuses_plain_http_and_internal_addresses(uri):
    assert jwks_uri_problem(uri, local_ok=False) is not None
    assert jwks_uri_problem("https://keys.example/.well-known/jwks.json", local_ok=False) is None


def test_production_refuses_a_name_that_resolves_to_an_internal_address(monkeypatch):
    internal = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 443))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: internal)
    with pytest.raises(JwksFetchError, match="loopback, private or link-local"):
        fetch_jwks("https://keys.example/jwks.json", local_ok=False)


def test_production_refuses_internal_jwks_uris_at_registration(app, developer, sandbox, monkeypatch):
    monkeypatch.setitem(app.config, "FHIRGATE_JWKS_URI_LOCAL_OK", False)
    response = developer.post("/api/apps", json={"name": "Internal", "jwks_uri": "https://10.0.0.7/jwks"})
    assert response.status_code == 400 and "private" in response.get_json()["message"]


def test_development_allows_loopback_key_hosts():
    assert jwks_uri_problem("http://127.0.0.1:8080/jwks.json", local_ok=True) is None


def test_production_config_refuses_local_key_hosts(monkeypatch, tmp_path):
    from app.config import load_config

    monkeypatch.setenv("FHIRGATE_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("FHIRGATE_KEK", "k" * 40)
    monkeypatch.setenv("FHIRGATE_BASE_URL", "https://fhirgate.example")
    assert load_config(tmp_path)["FHIRGATE_JWKS_URI_LOCAL_OK"] is False


def test_a_failed_fetch_is_remembered_for_a_while(client, registered, host, key):
    host.status = 500
    for _ in range(3):
        assert token(client, key, registered.key).status_code == 401
    assert host.fetches == 1


def test_saving_the_same_url_again_drops_the_cached_keys(client, developer, registered, host, key):
    assert token(client, key, registered.key).status_code == 200
    replacement = ClientKey("ES384")
    host.jwks = replacement.jwks()  # the old key was compromised and is gone from the host
    saved = developer.put(f"/api/apps/{registered.key}/keys", json={"jwks_uri": host.url})
    assert saved.status_code == 200
    assert token(client, key, registered.key).status_code == 401
    assert token(client, replacement, registered.key).status_code == 200


@pytest.fixture
def dripping_host():
    """Answers one header byte at a time, slowly: a per-read timeout alone never fires."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            with connection:
                connection.sendall(b"HTTP/1.1 200 OK\r\n")
                while not stop.is_set():
                    try:
                        connection.sendall(b"X")
                    except OSError:
                        break
                    time.sleep(0.2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/jwks.json"
    stop.set()
    thread.join(timeout=5)
    server.close()


def test_the_whole_fetch_has_one_deadline(dripping_host, monkeypatch):
    monkeypatch.setattr(jwks_fetch, "TIMEOUT_S", 1.0)
    started = time.monotonic()
    with pytest.raises(JwksFetchError, match="did not answer in time"):
        fetch_jwks(dripping_host, local_ok=True)
    assert time.monotonic() - started < 2.0


def test_a_slow_name_lookup_is_given_up_on(monkeypatch):
    monkeypatch.setattr(jwks_fetch, "TIMEOUT_S", 0.5)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: time.sleep(2) or [])
    started = time.monotonic()
    with pytest.raises(JwksFetchError, match="did not resolve in time"):
        fetch_jwks("https://keys.example/jwks.json", local_ok=False)
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    "uri",
    [
        "https://[::ffff:10.0.0.1]/jwks.json",
        "https://[64:ff9b::a00:1]/jwks.json",
        "https://[2002:a00:1::]/jwks.json",
        "https://[::a00:1]/jwks.json",
        "https://kéys.example/jwks.json",
    ],
)
def test_internal_addresses_inside_ipv6_and_non_ascii_urls_are_refused(uri):
    assert jwks_uri_problem(uri, local_ok=False) is not None


def test_a_jku_header_must_be_the_registered_jwks_uri(client, developer, registered, host, key):
    """SMART Backend Services: a jku that names another key set is refused, even though the key
    that signed it is the registered one; the registered URL itself is fine."""
    elsewhere = key.assertion(registered.key, header={"jku": "https://attacker.example/jwks.json"})
    response = client.post("/oauth/token", data=assertion_form(elsewhere))
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"
    assert "jku" in failure(developer, registered.key)

    same = key.assertion(registered.key, header={"jku": host.url})
    assert client.post("/oauth/token", data=assertion_form(same)).status_code == 200
