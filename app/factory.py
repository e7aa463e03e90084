"""The application factory."""

from __future__ import annotations

import gc
import logging
import sys
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

# Models must be imported before Alembic or create_all look at the metadata.
from app import models as _app_models  # noqa: E402,F401
from app.config import DEFAULT_INSTANCE_PATH, load_config
from app.cors import Cors
from app.direct_reads import init_direct_reads
from app.errors import register_error_handlers
from app.extensions import db, limiter, migrate
from app.headers import ALWAYS, add_security_headers
from app.input_check import init_input_check
from app.integrations import models as _integration_models  # noqa: E402,F401
from app.lanes import init_heavy_slots
from app.login_limits import init_login_limits
from app.pool_checks import init_pool_checks
from app.sqlite_transactions import init_sqlite_transactions
from app.time_limits import init_time_limits, statement_timeout_options
from fhir.bulk import tables as _bulk_tables  # noqa: E402,F401
from fhir.storage import tables as _fhir_tables  # noqa: E402,F401
from oauth import models as _oauth_models  # noqa: E402,F401

# A worker's threads take turns at the interpreter lock: a light request (a read) then waits at
# most this long behind a heavy one's Python (app/lanes.py), instead of CPython's default 5 ms.
SWITCH_INTERVAL_S = 0.0005


def create_app(config: dict | None = None, instance_path: Path | None = None) -> Flask:
    """Build the app from the environment, overridden by ``config`` (used by tests)."""
    instance_path = Path(instance_path or DEFAULT_INSTANCE_PATH)
    app = Flask(__name__, instance_path=str(instance_path), instance_relative_config=False)
    app.config.update(load_config(instance_path))
    if config:
        app.config.update(config)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = statement_timeout_options(app.config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.setswitchinterval(SWITCH_INTERVAL_S)

    db.init_app(app)
    init_pool_checks(app)
    init_sqlite_transactions(app)
    with app.app_context():
        config = app.config
        init_direct_reads(
            app, db.engine, config["FHIRGATE_STATEMENT_TIMEOUT_MS"], config["FHIRGATE_QUICK_SEARCH_MS"]
        )
        init_time_limits(app, db.engine)
    migrate.init_app(app, db)
    limiter.init_app(app)
    init_login_limits(app)

    from app.integrations.gateway import init_gateway
    from fhir.audit import init_audit
    from fhir.bulk.storage import init_export_storage
    from fhir.fair_share import init_fair_share
    from fhir.upstream_proxy import init_upstream_proxy
    from oauth import init_oauth

    init_oauth(app)
    init_audit(app)
    init_fair_share(app)
    init_heavy_slots(app)
    init_export_storage(app)
    init_gateway(app)
    init_upstream_proxy(app)

    from app.api import bp as api_bp
    from app.home import bp as home_bp
    from app.web import bp as web_bp
    from fhir.views import bp as fhir_bp

    app.register_blueprint(api_bp)
    app.register_blueprint(home_bp)
    app.register_blueprint(web_bp)
    app.register_blueprint(fhir_bp)
    init_input_check(app)
    register_error_handlers(app)
    app.after_request(add_security_headers)

    from app.cli import register_commands

    register_commands(app)
    from fhir.read_fast_path import ReadFastPath
    from fhir.search_fast_path import SearchFastPath
    from fhir.upstream_fast_path import UpstreamFastPath

    app.wsgi_app = UpstreamFastPath(app, ReadFastPath(app, SearchFastPath(app, app.wsgi_app)))
    app.wsgi_app = Cors(app.wsgi_app, ALWAYS)
    # Outermost, so that everything inside (the fast paths too) sees the client's address.
    if app.config["FHIRGATE_TRUSTED_PROXIES"]:
        hops = app.config["FHIRGATE_TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    # The app's long-lived objects (about 160,000: the R4B models, the search definitions, the
    # libraries) never become garbage: out of the collector's sight, a full collection took
    # 7.6 ms instead of 103 ms, and it runs in the middle of some request — a read's p99.
    gc.freeze()
    return app
