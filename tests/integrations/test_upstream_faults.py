"""A connected hospital's upstream that is down, slow, failing, huge, not FHIR or redirecting:
each gets a 502 or 504 OperationOutcome within the bound, and no credential leaks.

The upstreams here are real sockets on 127.0.0.1 served by small threads that misbehave on
purpose (a real EHR cannot be made to); the proxy talks to them over HTTP as to any upstream.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from contextlib import contextmanager

import pytest

from app.extensions import db
from app.integrations.models import IntegrationCredential
from tests.servers import free_port

EHR_KEY = "ehr-api-key-that-must-never-leak-7f2c"
BOUND_S = 2


@contextmanager
def raw_upstream(answer):
    """A listening socket whose every connection is handed to ``answer(conn)`` in a thread."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stop = threading.Event()
    seen: list[bytes] = []

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=_handle, args=(conn,), daemon=True).start()

    def _handle(conn):
        with conn:
            conn.settimeout(5)
            try:
                seen.append(conn.recv(65536))
                answer(conn)
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", seen
    finally:
        stop.set()
        server.close()
        thread.join(timeout=5)


def _http(conn, status: str, body: bytes, headers: str = "") -> None:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
    conn.sendall(head.encode() + body)


@pytest.fixture
def connect(app, make, monkeypatch):
    """Connect hospital north to ``url``, switch an application on with an API key; return a
    function that sends a FHIR request through fhirgate with the application's secret."""
    monkeypatch.setitem(app.config, "FHIRGATE_UPSTREAM_TIMEOUT_S", BOUND_S)
    make.hospital("north", "North")
    operator = make.as_role("superadmin")
    developer = make.as_role("developer")
    application = make.application(developer)

    def attach(url: str):
        body = {"base_url": f"{url}/fhir", "auth_kind": "api_key", "scope": ["system/*.rs"]}
        assert operator.put("/api/hospitals/north/upstream", json=body).status_code == 200
        switched = developer.put(
            f"/api/apps/{application.key}/integrations/north",
            json={"credentials": {"api_key": EHR_KEY}, "client_secret": application.secret},
        )
        assert switched.status_code == 200, switched.get_json()
        client = app.test_client()
        headers = {"X-Client-Id": application.key, "X-Client-Secret": application.secret}

        def get(path: str):
            return client.get(f"/fhir/north/{path}", headers=headers)

        get.headers = headers
        return get

    return attach


def _outcome(response, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    text = response.get_data(as_text=True)
    assert EHR_KEY not in text
    return body["issue"][0]["diagnostics"]


def test_an_upstream_that_is_down_is_a_502_at_once(connect):
    port = free_port()  # nothing listens there
    get = connect(f"http://127.0.0.1:{port}")
    started = time.monotonic()
    message = _outcome(get("Patient/p1"), 502)
    assert time.monotonic() - started < BOUND_S and "refused the connection" in message


def test_a_slow_upstream_is_a_504_within_the_bound(connect):
    with raw_upstream(lambda conn: time.sleep(BOUND_S + 3)) as (url, _):
        get = connect(url)
        started = time.monotonic()
        _outcome(get("Patient/p1"), 504)
        assert time.monotonic() - started < BOUND_S + 1


def test_an_upstream_that_drips_its_answer_is_cut_off_at_the_bound(connect):
    def drip(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(100):
            conn.sendall(b"{")
            time.sleep(0.5)

    with raw_upstream(drip) as (url, _):
        get = connect(url)
        started = time.monotonic()
        _outcome(get("Patient/p1"), 504)
        assert time.monotonic() - started < BOUND_S + 1


def test_an_upstream_error_is_a_502_that_says_so(connect):
    with raw_upstream(lambda conn: _http(conn, "500 Internal Server Error", b"boom " + EHR_KEY.encode())) as (
        url,
        _,
    ):
        message = _outcome(connect(url)("Patient/p1"), 502)
    assert "HTTP 500" in message


def test_ten_megabytes_of_garbage_is_a_502(connect):
    garbage = b"\x00garbage" * (10 * 1024 * 1024 // 8)
    with raw_upstream(
        lambda conn: _http(conn, "200 OK", garbage, "Content-Type: application/fhir+json\r\n")
    ) as (
        url,
        _,
    ):
        message = _outcome(connect(url)("Patient/p1"), 502)
    assert "larger than" in message


def test_an_answer_that_is_not_fhir_json_is_a_502(connect):
    with raw_upstream(lambda conn: _http(conn, "200 OK", b"<html>login</html>")) as (url, _):
        message = _outcome(connect(url)("Patient/p1"), 502)
    assert "not JSON" in message


def test_a_redirect_is_never_followed(connect):
    followed = []
    with raw_upstream(lambda conn: followed.append(conn.recv(100))) as (inside, _):
        location = f"Location: {inside}/metadata\r\n"
        with raw_upstream(lambda conn: _http(conn, "302 Found", b"", location)) as (url, _):
            message = _outcome(connect(url)("Patient/p1"), 502)
    assert "redirect" in message and followed == []


def test_the_upstreams_refusal_is_a_403_explained(connect):
    with raw_upstream(
        lambda conn: _http(conn, "401 Unauthorized", b'{"resourceType":"OperationOutcome"}')
    ) as (
        url,
        _,
    ):
        message = _outcome(connect(url)("Patient/p1"), 403)
    assert "upstream EHR refused" in message


def test_the_key_goes_upstream_in_its_header_and_nowhere_else(app, connect, caplog):
    body = b'{"resourceType":"Patient","id":"p1"}'
    caplog.set_level(logging.DEBUG)
    with raw_upstream(
        lambda conn: _http(conn, "200 OK", body, "Content-Type: application/fhir+json\r\n")
    ) as (
        url,
        seen,
    ):
        response = connect(url)("Patient/p1?_elements=id")
    assert response.status_code == 200 and response.get_json() == {"resourceType": "Patient", "id": "p1"}
    request_head = seen[0].decode()
    assert request_head.startswith("GET /fhir/Patient/p1?_elements=id HTTP/1.1")
    assert f"X-API-Key: {EHR_KEY}" in request_head
    assert "X-Client-Secret" not in request_head and "Cookie" not in request_head
    assert EHR_KEY not in caplog.text
    with app.app_context():
        row = db.session.scalars(db.select(IntegrationCredential)).one()
        assert EHR_KEY.encode() not in row.sealed


def test_in_production_an_upstream_that_resolves_to_this_machine_is_never_contacted(
    app, connect, monkeypatch
):
    """Registered while local addresses were allowed (development), refused once they are not."""
    with raw_upstream(lambda conn: _http(conn, "200 OK", b'{"resourceType":"Patient","id":"p1"}')) as (
        url,
        seen,
    ):
        plain = connect(url)
        monkeypatch.setitem(app.config, "FHIRGATE_UPSTREAM_LOCAL_OK", False)
        assert "https" in _outcome(plain("Patient/p1"), 502)
        monkeypatch.setitem(app.config, "FHIRGATE_UPSTREAM_LOCAL_OK", True)
        get = connect("https://localhost:" + url.rsplit(":", 1)[1])
        monkeypatch.setitem(app.config, "FHIRGATE_UPSTREAM_LOCAL_OK", False)
        assert "loopback" in _outcome(get("Patient/p1"), 502)
    assert seen == []


def test_one_kept_alive_connection_serves_request_after_request(connect):
    """The upstream keeps its connection open (HTTP/1.1): the proxy sends the next request on it
    rather than opening another (a handshake per request would cost more than the request)."""
    body = b'{"resourceType":"Patient","id":"p1"}'
    connections = []

    def keep_alive(conn):
        connections.append(conn)
        _http(conn, "200 OK", body, "Content-Type: application/fhir+json\r\n")
        while True:  # the next requests on the same connection
            if not conn.recv(65536):
                return
            _http(conn, "200 OK", body, "Content-Type: application/fhir+json\r\n")

    with raw_upstream(keep_alive) as (url, _):
        get = connect(url)
        statuses = [get("Patient/p1").status_code for _ in range(5)]
    assert statuses == [200] * 5 and len(connections) == 1


def test_a_chunked_answer_and_one_that_ends_with_its_connection_are_read_whole(connect):
    body = b'{"resourceType":"Patient","id":"p1","name":[{"family":"Chunked"}]}'

    def chunked(conn):
        head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/fhir+json\r\n\r\n"
        pieces = [body[:10], body[10:30], body[30:]]
        conn.sendall(
            head.encode() + b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        )

    def until_close(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body)

    for answer in (chunked, until_close):
        with raw_upstream(answer) as (url, _):
            response = connect(url)("Patient/p1")
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["name"] == [{"family": "Chunked"}]


def test_an_application_with_public_keys_locks_its_credentials_with_a_passphrase(
    app, make, client, monkeypatch
):
    """No secret to derive the key from: the developer sets an integration passphrase; a request
    brings it beside a private_key_jwt token; a wrong one opens nothing."""
    from tests.oauth.signing import ClientKey, assertion_form

    make.hospital("north", "North")
    operator, developer = make.as_role("superadmin"), make.as_role("developer")
    signer = ClientKey()
    application = make.application(
        developer, jwks=signer.jwks(), token_endpoint_auth_method="private_key_jwt"
    )
    body = b'{"resourceType":"Patient","id":"p1"}'
    with raw_upstream(
        lambda conn: _http(conn, "200 OK", body, "Content-Type: application/fhir+json\r\n")
    ) as (
        url,
        seen,
    ):
        upstream = {"base_url": f"{url}/fhir", "auth_kind": "api_key", "scope": ["system/*.rs"]}
        assert operator.put("/api/hospitals/north/upstream", json=upstream).status_code == 200
        switch = f"/api/apps/{application.key}/integrations/north"
        on = {"credentials": {"api_key": EHR_KEY}, "integration_passphrase": "the passphrase, long enough"}
        assert developer.put(switch, json=on).status_code == 400  # none set yet
        phrase = f"/api/apps/{application.key}/integration-passphrase"
        assert developer.put(phrase, json={"passphrase": "short"}).status_code == 400
        assert developer.put(phrase, json={"passphrase": "the passphrase, long enough"}).status_code == 204
        wrong = developer.put(switch, json={**on, "integration_passphrase": "another passphrase, long"})
        assert wrong.status_code == 403 and wrong.get_json()["error"] == "invalid_integration_passphrase"
        assert developer.put(switch, json=on).status_code == 200

        token = client.post("/oauth/token", data=assertion_form(signer.assertion(application.key)))
        assert token.status_code == 200, token.get_json()
        bearer = {"Authorization": f"Bearer {token.get_json()['access_token']}"}
        path = "/fhir/north/Patient/p1"
        assert client.get(path, headers=bearer).status_code == 401  # the token carries no key
        with_phrase = {**bearer, "X-Integration-Passphrase": "the passphrase, long enough"}
        assert client.get(path, headers=with_phrase).status_code == 200
        assert f"X-API-Key: {EHR_KEY}" in seen[-1].decode()
        wrong_phrase = client.get(
            path, headers={**bearer, "X-Integration-Passphrase": "not it, but long enough"}
        )
        assert wrong_phrase.status_code == 401 and EHR_KEY not in wrong_phrase.get_data(as_text=True)

        # Changing it with the current one seals the credentials again; without, it is refused.
        assert developer.put(phrase, json={"passphrase": "a new passphrase, long enough"}).status_code == 409
        changed = {
            "passphrase": "a new passphrase, long enough",
            "current_passphrase": "the passphrase, long enough",
        }
        assert developer.put(phrase, json=changed).status_code == 204
        assert client.get(path, headers=with_phrase).status_code == 401
        renewed = {**bearer, "X-Integration-Passphrase": "a new passphrase, long enough"}
        assert client.get(path, headers=renewed).status_code == 200

    secret_app = make.application(developer)
    refused = developer.put(
        f"/api/apps/{secret_app.key}/integration-passphrase", json={"passphrase": "x" * 20}
    )
    assert refused.status_code == 400 and "client secret" in refused.get_json()["message"]


def test_resources_the_application_may_not_read_never_leave_even_if_the_upstream_sends_them(connect):
    """A backstop behind the request's checks: whatever the upstream adds on its own (an
    include it applied by default, a wrong answer) is refused whole."""
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "p1"}},
            {"resource": {"resourceType": "AuditEvent", "id": "a1"}},
        ],
    }
    body = json.dumps(bundle).encode()
    with raw_upstream(
        lambda conn: _http(conn, "200 OK", body, "Content-Type: application/fhir+json\r\n")
    ) as (
        url,
        _,
    ):
        message = _outcome(connect(url)("Patient?_id=p1"), 403)
    assert "AuditEvent" in message


def test_a_tokens_search_reaches_the_upstream_with_its_prefer_header_on_either_path(app, make, client):
    from tests.conftest import BASE_URL, token_request

    make.hospital("north", "North")
    operator, developer = make.as_role("superadmin"), make.as_role("developer")
    application = make.application(developer)
    bundle = b'{"resourceType":"Bundle","type":"searchset","entry":[]}'
    with raw_upstream(
        lambda conn: _http(conn, "200 OK", bundle, "Content-Type: application/fhir+json\r\n")
    ) as (
        url,
        seen,
    ):
        upstream = {"base_url": f"{url}/fhir", "auth_kind": "api_key", "scope": ["system/*.rs"]}
        assert operator.put("/api/hospitals/north/upstream", json=upstream).status_code == 200
        on = {"credentials": {"api_key": EHR_KEY}, "client_secret": application.secret}
        assert developer.put(f"/api/apps/{application.key}/integrations/north", json=on).status_code == 200
        token = token_request(client, application, resource=f"{BASE_URL}/fhir/north").get_json()[
            "access_token"
        ]
        headers = {"Authorization": f"Bearer {token}", "Prefer": "handling=strict"}
        for fast in (False, True):
            app.config["FHIRGATE_PROXY_FAST_PATH"] = fast
            try:
                assert client.get("/fhir/north/Patient?name=x", headers=headers).status_code == 200
            finally:
                app.config["FHIRGATE_PROXY_FAST_PATH"] = True
    assert len(seen) == 2 and all("Prefer: handling=strict" in request.decode() for request in seen)


@pytest.mark.parametrize(
    "path",
    [
        "Patient/_search?name=x",
        "Patient/%3F_has:Observation:patient:code=1",
        "Patient/..",
        "Patient/%E2%82%AC",
    ],
)
def test_a_path_that_is_no_type_and_id_never_reaches_the_upstream(connect, path):
    """The read's scope was checked for a read: an id that is no FHIR id (a search, an encoded
    query, a dot-segment) would make the upstream do something else."""
    with raw_upstream(lambda conn: _http(conn, "200 OK", b'{"resourceType":"Patient","id":"p1"}')) as (
        url,
        seen,
    ):
        response = connect(url)(path)
    assert response.status_code in (400, 404) and seen == []


def test_framing_the_upstream_gets_wrong_is_a_502_and_an_unframed_answer_ends_with_its_connection(connect):
    body = b'{"resourceType":"Patient","id":"p1"}'
    with raw_upstream(lambda conn: conn.sendall(b"HTTP/1.1 200 OK\r\n\r\n" + body)) as (url, _):
        unframed = connect(url)("Patient/p1")  # no length, no chunks: the body runs to the close
    assert unframed.status_code == 200 and unframed.get_json()["id"] == "p1"
    negative = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-ffffffff\r\n\r\n"
    with raw_upstream(lambda conn: conn.sendall(negative)) as (url, _):
        _outcome(connect(url)("Patient/p1"), 502)
    with raw_upstream(lambda conn: _http(conn, "200 OK", b'{"resourceType":"Bundle","entry":5}')) as (url, _):
        _outcome(connect(url)("Patient?name=x"), 502)


def test_a_kept_alive_connection_the_upstream_closed_meanwhile_is_not_used_for_a_post(app, connect):
    body = b'{"resourceType":"Patient","id":"p1"}'

    def answer_once_then_close(conn):
        _http(conn, "200 OK", body, "Content-Type: application/fhir+json\r\n")
        time.sleep(0.2)  # idle: the upstream closes its side, as gunicorn does after 2 s

    with raw_upstream(answer_once_then_close) as (url, seen):
        get = connect(url)
        assert get("Patient/p1").status_code == 200
        time.sleep(0.5)
        client = app.test_client()
        headers = {**get.headers, "Content-Type": "application/x-www-form-urlencoded"}
        searched = client.post("/fhir/north/Patient/_search", data="name=x", headers=headers)
    assert searched.status_code == 200, searched.get_data(as_text=True)
    assert len(seen) == 2 and seen[1].startswith(b"POST /fhir/Patient/_search")


def test_credentials_that_are_not_ascii_are_refused_at_switch_on(make, connect):
    connect("http://127.0.0.1:9")
    developer = make.as_role("developer")
    application = make.application(developer)
    refused = developer.put(
        f"/api/apps/{application.key}/integrations/north",
        json={"credentials": {"api_key": "k€y"}, "client_secret": application.secret},
    )
    assert refused.status_code == 400 and "ASCII" in refused.get_json()["message"]


def test_a_batch_entry_with_a_method_that_is_no_text_is_a_400(app, connect):
    get = connect("http://127.0.0.1:9")
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": ["GET"], "url": "Patient"}}],
    }
    headers = {**get.headers, "Content-Type": "application/fhir+json"}
    response = app.test_client().post("/fhir/north", data=json.dumps(batch), headers=headers)
    assert response.status_code == 400 and response.get_json()["resourceType"] == "OperationOutcome"


def test_the_capability_statement_declares_only_what_the_proxy_forwards(client, connect):
    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "kind": "instance",
        "format": ["xml", "json"],
        "rest": [
            {
                "mode": "server",
                "operation": [{"name": "export", "definition": "x"}, {"name": "convert", "definition": "y"}],
                "resource": [
                    {
                        "type": "Patient",
                        "operation": [
                            {"name": "everything", "definition": "e"},
                            {"name": "match", "definition": "m"},
                        ],
                    },  # fmt: skip
                    {"type": "Observation", "operation": [{"name": "lastn", "definition": "l"}]},
                ],
            }
        ],
    }
    body = json.dumps(statement).encode()
    with raw_upstream(
        lambda conn: _http(conn, "200 OK", body, "Content-Type: application/fhir+json\r\n")
    ) as (
        url,
        _,
    ):
        connect(url)
        ours = client.get("/fhir/north/metadata").get_json()
    assert ours["format"] == ["application/fhir+json", "json"]
    rest = ours["rest"][0]
    assert "operation" not in rest and "security" in rest
    assert [r.get("operation") for r in rest["resource"]] == [
        [{"name": "everything", "definition": "e"}],
        None,
    ]
