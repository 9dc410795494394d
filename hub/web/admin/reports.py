"""Reports with charts and CSV download."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue

from hub.web.admin import page


@page("/reports", "reports.read")
def reports() -> ResponseReturnValue:
    return render_template("admin/reports.html")
