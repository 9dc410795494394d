"""The Flask application factory: settings → runtime (db, plugins, jobs) → blueprints."""

from __future__ import annotations

import logging
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


def create_app(config: dict[str, Any] | Settings | None = None) -> Flask:
    settings = config if isinstance(config, Settings) else settings_module.load(config)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = Flask("hub")
    app.json = JSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["SECRET_KEY"] = settings.secret_key
    app.extensions["orderhub"] = Runtime(settings)

    from hub.web import carrier_hooks, errors, health, hooks
    from hub.web.api import blueprint

    errors.install(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(hooks.bp)
    app.register_blueprint(carrier_hooks.bp)
    app.register_blueprint(blueprint())
    return app
