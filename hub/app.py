"""The Flask application factory: settings → runtime (db, plugins, jobs) → blueprints."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from hub import settings as settings_module
from hub.runtime import Runtime
from hub.settings import Settings


class JSONProvider(DefaultJSONProvider):
    """ISO-8601 times and Decimal as strings: no float ever carries money out of the hub."""

    sort_keys = False

    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, datetime | date):
            return o.isoformat()
        if isinstance(o, Decimal):
            return str(o)
        return DefaultJSONProvider.default(o)


def create_app(
    config: dict[str, Any] | Settings | None = None, *, plugins: Mapping[str, object] | None = None
) -> Flask:
    """``plugins`` (name → module or object with hook implementations) are registered before
    the configuration is checked against what is installed, as entry points would be: for
    tests and applications that embed the hub. A tenant file naming a plugin that is not
    installed raises ConfigError."""
    settings = config if isinstance(config, Settings) else settings_module.load(config)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = Flask("hub", static_folder=None)  # page assets: hub.web.ui serves them
    app.json = JSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["SECRET_KEY"] = settings.secret_key
    runtime = app.extensions["orderhub"] = Runtime(settings)
    try:
        for name, plugin in (plugins or {}).items():
            runtime.plugins.register(plugin, name, "create_app")
        runtime.plugins.check_config(settings)
    except BaseException:
        runtime.close()
        raise

    from hub.web import (
        admin,
        carrier_hooks,
        errors,
        headers,
        health,
        hooks,
        inbound_email,
        metrics_route,
        portal,
        public,
        ui,
    )
    from hub.web.api import blueprint

    ui.install(app, runtime)
    errors.install(app)
    headers.install(app)
    metrics_route.install(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(hooks.bp)
    app.register_blueprint(carrier_hooks.bp)
    app.register_blueprint(public.bp)
    app.register_blueprint(inbound_email.bp)
    app.register_blueprint(blueprint())
    admin.install(app)
    portal.install(app)
    return app
