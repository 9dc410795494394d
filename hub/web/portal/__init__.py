"""The customer portal at /portal/<tenant>/ (filled in by hub.web.portal.pages)."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("portal", __name__, url_prefix="/portal/<tenant>", template_folder="templates")


def install(app: Flask) -> None:
    app.register_blueprint(bp)
