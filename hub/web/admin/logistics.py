"""Logistics pages (shipments, tracking, exceptions, rates, carrier accounts)."""

from __future__ import annotations

from flask import render_template, request
from flask.typing import ResponseReturnValue

from hub.web.admin import api, page


@page("/shipments", "shipping.read")
def shipments() -> ResponseReturnValue:
    query = {k: v for k, v in request.args.items() if k != "lang"}
    return render_template("admin/shipments.html", found=api("list_shipments", query=query))


@page("/shipments/<int:shipment_id>", "shipping.read")
def shipment(shipment_id: int) -> ResponseReturnValue:
    return render_template(
        "admin/shipment.html", tracking=api("shipment_events", shipment_id=shipment_id)
    )


@page("/exceptions", "shipping.read")
def exceptions() -> ResponseReturnValue:
    query = {k: v for k, v in request.args.items() if k != "lang"}
    return render_template("admin/exceptions.html", found=api("list_exceptions", query=query))
