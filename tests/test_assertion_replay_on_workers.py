"""A client assertion is used once across gunicorn workers, over real sockets.

The ``jti`` is remembered in the shared database, not in a worker's memory: copies of one
assertion sent at the same moment yield exactly one token, and a copy replayed later is
refused by whichever worker receives it (read from the access log: ``<pid> <status>``).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import BASE_URL
from tests.oauth.signing import ClientKey, assertion_form
from tests.servers import gunicorn_server, served_by

WORKERS = 3
COPIES = 12


@pytest.fixture
def gunicorn(app, tmp_path):
    log = tmp_path / "access.log"
    with gunicorn_server(app, log, WORKERS, BASE_URL) as url:
        yield url, log


def _post(url: str, assertion: str) -> requests.Response:
    return requests.post(
        f"{url}/oauth/token", data=assertion_form(assertion), headers={"Connection": "close"}, timeout=10
    )


def test_parallel_copies_of_one_assertion_yield_one_token(gunicorn, make, sandbox):
    url, log = gunicorn
    signer = ClientKey("ES384")
    application = make.application(jwks=signer.jwks())
    assertion = signer.assertion(application.key)
    with ThreadPoolExecutor(COPIES) as pool:
        statuses = sorted(
            response.status_code for response in pool.map(lambda _: _post(url, assertion), range(COPIES))
        )
    assert statuses == [200] + [401] * (COPIES - 1)
    time.sleep(0.2)  # let the access log catch up
    assert len({pid for pid, _ in served_by(log)[-COPIES:]}) > 1, "one worker served every copy"


def test_a_replay_is_refused_by_every_other_worker(gunicorn, make, sandbox):
    url, log = gunicorn
    signer = ClientKey("RS384")
    application = make.application(jwks=signer.jwks())
    assertion = signer.assertion(application.key)
    assert _post(url, assertion).status_code == 200
    time.sleep(0.1)
    first_worker = served_by(log)[-1][0]
    others = set()
    for _ in range(200):
        response = _post(url, assertion)
        assert response.status_code == 401
        assert "jti was already used" in response.json()["error_description"]
        time.sleep(0.05)
        others.add(served_by(log)[-1][0])
        if len(others - {first_worker}) == WORKERS - 1:
            break
    assert len(others - {first_worker}) == WORKERS - 1, "the replays never reached the other workers"
