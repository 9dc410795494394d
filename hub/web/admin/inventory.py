"""Inventory pages (stock, alerts, adjustments, CSV import, ledger)."""

from __future__ import annotations

from flask import render_template, request
from flask.typing import ResponseReturnValue

from hub.web.admin import api, page


@page("/stock", "stock.read")
def stock() -> ResponseReturnValue:
    query = {k: v for k, v in request.args.items() if k != "lang"}
    return render_template("admin/stock.html", found=api("list_stock", query=query))
