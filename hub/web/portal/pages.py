"""The portal's pages: find an order, follow it, ask for help about it, review it."""

from __future__ import annotations

import hmac
import logging
import re
import time
from pathlib import Path
from typing import Any

from flask import (
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from limits import parse
from sqlalchemy import select

from hub.core import portal_links, reviews
from hub.core.errors import HubError, NotFound
from hub.core.models import Customer, Order
from hub.web.portal import LOOKUP_SECONDS, SIGNED_IN_SECONDS, Grant, api, bp, write_grant
from hub.web.portal import forget_grant as _forget
from hub.web.public_url import PROBLEM, external_url
from hub.web.ui import attempts, field_errors

logger = logging.getLogger("orderhub.portal")

# Lookups allowed per address and per order number (failures count against the number).
PER_ADDRESS = (parse("10/minute"), parse("50/day"))
PER_NUMBER = parse("5/hour")
MILESTONES = ("ordered", "confirmed", "shipped", "out_for_delivery", "delivered")
_DIGITS = re.compile(r"\D+")


def _runtime() -> Any:
    return current_app.extensions["orderhub"]


def _contact_matches(given: str, email: str | None, phones: list[str | None]) -> bool:
    """The e-mail (whatever its case) or a phone number (whatever its spacing; the country
    code may be left out) on the order. Compared in constant time."""
    given = given.strip()
    if "@" in given:
        return bool(email) and hmac.compare_digest(
            given.casefold().encode(), (email or "").strip().casefold().encode()
        )
    digits = _DIGITS.sub("", given)
    if len(digits) < 7:
        return False
    found = False
    for phone in phones:
        theirs = _DIGITS.sub("", phone or "")
        if len(theirs) >= 7:
            # One ends with the other: the shorter one may leave out the country code.
            tail = min(len(theirs), len(digits))
            found |= hmac.compare_digest(digits[-tail:].encode(), theirs[-tail:].encode())
    return found


def _orders_of(grant: Grant | None) -> list[dict[str, Any]]:
    if grant is None:
        return []
    numbers = list(grant.orders)
    if grant.customer_id:
        with _runtime().session() as session:
            numbers += session.scalars(
                select(Order.number)
                .where(Order.tenant_id == grant.tenant_id, Order.customer_id == grant.customer_id)
                .order_by(Order.created_at.desc())
                .limit(50)
            ).all()
    out = []
    for number in dict.fromkeys(numbers):
        try:
            out.append(api("get_order", number=number))
        except NotFound:
            continue
    return out


def _allowed(number: str) -> bool:
    grant: Grant | None = g.get("grant")
    if grant is None:
        return False
    if grant.allows(number):
        return True
    if grant.customer_id:
        with _runtime().session() as session:
            return (
                session.scalar(
                    select(Order.id).where(
                        Order.tenant_id == grant.tenant_id,
                        Order.number == number,
                        Order.customer_id == grant.customer_id,
                    )
                )
                is not None
            )
    return False


def _require(number: str) -> None:
    if not _allowed(number):
        raise NotFound(_("Find your order first: enter its number and your e-mail or phone."))


def _refused(errors: dict[str, str], status: int) -> ResponseReturnValue:
    """The start page again, with the visitor's form as typed and what was wrong with it."""
    return render_template("portal/home.html", orders=[], errors=errors, form=request.form), status


@bp.route("/")
def home() -> ResponseReturnValue:
    return render_template(
        "portal/home.html", orders=_orders_of(g.get("grant")), errors={}, form={}
    )


@bp.route("/lookup", methods=["POST"])
def lookup() -> ResponseReturnValue:
    number = (request.form.get("number") or "").strip().upper()
    contact = (request.form.get("contact") or "").strip()
    errors: dict[str, str] = {}
    if not number:
        errors["number"] = _("Enter the order number from your confirmation.")
    if not contact:
        errors["contact"] = _("Enter the e-mail or phone number you ordered with.")
    if errors:
        return _refused(errors, 400)
    counter = attempts()
    address = request.remote_addr or "?"
    shop = g.portal_tenant
    if not all(counter.test(lim, "portal-lookup", shop, address) for lim in PER_ADDRESS) or (
        not counter.test(PER_NUMBER, "portal-number", shop, number)
    ):
        return _refused({"": _("Too many attempts. Please wait a while and try again.")}, 429)
    for lim in PER_ADDRESS:
        counter.hit(lim, "portal-lookup", shop, address)
    with _runtime().session() as session:
        row = session.execute(
            select(Customer.email, Customer.phone, Order.consignee_phone)
            .select_from(Order)
            .outerjoin(Customer, Customer.id == Order.customer_id)
            .where(Order.tenant_id == g.portal_tenant_id, Order.number == number)
        ).first()
    ok = row is not None and _contact_matches(contact, row[0], [row[1], row[2]])
    if not ok:
        counter.hit(PER_NUMBER, "portal-number", shop, number)
        # The same answer whether the order is unknown or the contact does not match.
        return _refused(
            {"": _("We found no order with that number and that e-mail or phone.")}, 404
        )
    grant = g.get("grant") or Grant(g.portal_tenant_id)
    grant.orders = [n for n in grant.orders if n != number] + [number]
    grant.until = max(grant.until, time.time() + LOOKUP_SECONDS)
    return write_grant(make_response(redirect(url_for("portal.order", number=number))), grant)


PER_ADDRESS_LINKS = parse("5/10 minutes")
PER_EMAIL_LINKS = parse("3/hour")


@bp.route("/link", methods=["POST"])
def ask_link() -> ResponseReturnValue:
    """E-mail me a sign-in link: the same answer whether or not the address is known."""
    email = (request.form.get("email") or "").strip()
    if "@" not in email or len(email) > 254:
        return _refused({"email": _("Enter the e-mail address you ordered with.")}, 400)
    counter = attempts()
    shop, address = g.portal_tenant, request.remote_addr or "?"
    if not counter.hit(PER_ADDRESS_LINKS, "portal-link", shop, address) or not counter.hit(
        PER_EMAIL_LINKS, "portal-link-email", shop, email.lower()
    ):
        return _refused({"": _("Too many attempts. Please wait a while and try again.")}, 429)
    base = external_url(f"/portal/{shop}/signin/")
    if base is None:
        logger.warning("portal sign-in link not sent: %s", PROBLEM)
    else:
        with _runtime().transaction(g.portal_tenant_id) as session:
            portal_links.request_link(session, g.portal_tenant_id, email, base + "{token}")
    return render_template("portal/link_sent.html")


@bp.route("/signin/<token>", methods=["GET", "POST"])
def signin(token: str) -> ResponseReturnValue:
    """GET only shows a button (mail scanners open every link); the POST uses the link."""
    with _runtime().transaction(g.portal_tenant_id) as session:
        if request.method == "GET":
            live = portal_links.is_live(session, g.portal_tenant_id, token)
            customer_id = None
        else:
            customer_id = portal_links.redeem(session, g.portal_tenant_id, token)
            live = customer_id is not None
    if not live:
        return render_template(
            "portal/error.html",
            status=404,
            message=_(
                "This sign-in link is not valid any more: links work once, for 15 "
                "minutes. Ask for a new one."
            ),
        ), 404
    if request.method == "GET":
        return render_template("portal/signin.html", token=token)
    grant = Grant(g.portal_tenant_id, [], customer_id, time.time() + SIGNED_IN_SECONDS)
    return write_grant(make_response(redirect(url_for("portal.home"))), grant)


@bp.route("/signout", methods=["POST"])
def signout() -> ResponseReturnValue:
    flash(_("You have left your orders. Find one again any time."))
    return _forget(make_response(redirect(url_for("portal.home"))))


def _milestones(
    order: dict[str, Any], shipments: list[dict[str, Any]], events: list[dict[str, Any]]
) -> tuple[list[tuple[str, str]], int]:
    """The stepper's steps and how far the order got (an index into them)."""
    labels = [_("Ordered"), _("Confirmed"), _("Shipped"), _("Out for delivery"), _("Delivered")]
    reached = 0
    if order["status"] not in ("new", "held", "awaiting_approval", "cancelled"):
        reached = 1
    if shipments or order["status"] in ("partially_shipped", "shipped", "delivered", "closed"):
        reached = 2
    statuses = {e["status"] for e in events}
    if "out_for_delivery" in statuses:
        reached = 3
    if "delivered" in statuses or order["status"] in ("delivered", "closed"):
        reached = 4
    return list(zip(MILESTONES, labels, strict=True)), reached


@bp.route("/orders/<number>")
def order(number: str) -> ResponseReturnValue:
    _require(number)
    found = api("get_order", number=number)
    shipments = api("list_shipments", query={"order": number})["items"]
    events: list[dict[str, Any]] = []
    for s in shipments:
        for e in api("shipment_events", shipment_id=s["id"])["items"]:
            events.append({**e, "tracking_number": s["tracking_number"]})
    events.sort(key=lambda e: e["at"], reverse=True)
    steps, reached = _milestones(found, shipments, events)
    tickets = api("list_tickets", query={"order": number})["items"]
    return render_template(
        "portal/order.html",
        order=found,
        shipments=shipments,
        events=events,
        steps=steps,
        reached=reached,
        tickets=tickets,
        reviewable=found["status"] in ("delivered", "closed"),
    )


KINDS = ("return", "exchange", "refund", "repair", "complaint", "question")


@bp.route("/orders/<number>/help", methods=["GET", "POST"])
def ask(number: str) -> ResponseReturnValue:
    """An after-sales request or a complaint about one order: a ticket in the shop's queue."""
    _require(number)
    found = api("get_order", number=number)
    errors: dict[str, str] = {}
    kind = request.values.get("kind") or "return"
    if request.method == "POST":
        lines = []
        for line in found["lines"]:
            qty = request.form.get(f"qty.{line['sku']}", "").strip()
            if qty:
                if not qty.isdigit() or not 0 < int(qty) <= line["quantity"]:
                    errors[f"qty.{line['sku']}"] = _("Choose from 1 to %(n)s.", n=line["quantity"])
                else:
                    lines.append({"sku": line["sku"], "quantity": int(qty)})
        body: dict[str, Any] = {
            "kind": kind if kind in KINDS else "question",
            "subject": (request.form.get("subject") or "").strip(),
            "body": (request.form.get("body") or "").strip(),
            "order": number,
            "customer": {"email": (found["customer"] or {}).get("email") or ""},
        }
        if (found["customer"] or {}).get("name"):
            body["customer"]["name"] = found["customer"]["name"]
        if lines:
            body["lines"] = lines
        if not body["subject"]:
            errors["subject"] = _("Say in a few words what it is about.")
        if not body["body"]:
            errors["body"] = _("Tell us what happened.")
        if not body["customer"]["email"]:
            errors[""] = _(
                "This order has no e-mail address, so we cannot answer you here. "
                "Please contact the shop."
            )
        if not errors:
            try:
                ticket = api("create_ticket", body=body)
            except HubError as exc:
                errors = field_errors(exc)
            else:
                flash(
                    _(
                        "Your request %(number)s is with our team. We will answer here and by "
                        "e-mail.",
                        number=ticket["number"],
                    )
                )
                return redirect(url_for("portal.ticket", number=ticket["number"]))
    return render_template(
        "portal/ask.html", order=found, kind=kind, kinds=KINDS, errors=errors, form=request.form
    ), 400 if errors else 200


def _ticket_for_grant(number: str) -> dict[str, Any]:
    ticket = api("get_ticket", number=number)
    if not ticket.get("order") or not _allowed(ticket["order"]):
        raise NotFound(_("Find your order first: enter its number and your e-mail or phone."))
    return ticket


@bp.route("/tickets/<number>", methods=["GET", "POST"])
def ticket(number: str) -> ResponseReturnValue:
    found = _ticket_for_grant(number)
    errors: dict[str, str] = {}
    if request.method == "POST":
        text = (request.form.get("body") or "").strip()
        if not text:
            errors["body"] = _("Write your message first.")
        else:
            try:
                api("add_message", number=number, body={"body": text, "from_customer": True})
            except HubError as exc:
                errors = field_errors(exc)
            else:
                flash(_("Your message is sent."))
                return redirect(url_for("portal.ticket", number=number))
    public = [m for m in found["messages"] if m["visibility"] == "public"]
    return render_template(
        "portal/ticket.html", ticket=found, messages=public, errors=errors
    ), 400 if errors else 200


@bp.route("/orders/<number>/review", methods=["POST"])
def review(number: str) -> ResponseReturnValue:
    _require(number)
    rating = request.form.get("rating", "")
    body: dict[str, Any] = {
        "order": number,
        "sku": request.form.get("sku", ""),
        "rating": int(rating) if rating.isdigit() else 0,
    }
    for key in ("title", "body"):
        if value := (request.form.get(key) or "").strip():
            body[key] = value
    try:
        api("create_review", body=body)
    except HubError as exc:
        flash(_("Your review was not saved: %(why)s", why=exc.message), "error")
    else:
        flash(_("Thank you for your review."))
    return redirect(url_for("portal.order", number=number))


@bp.route("/products/<sku>/reviews")
def product_reviews(sku: str) -> ResponseReturnValue:
    page = request.args.get("page", "1")
    with _runtime().session() as session:
        found = reviews.public_page(
            session,
            g.portal_tenant,
            sku,
            int(page) if page.isdigit() and 0 < int(page) < 10**6 else 1,
            20,
        )
    return render_template("portal/reviews.html", sku=sku, found=found)


@bp.route("/logo")
def logo() -> ResponseReturnValue:
    """The shop's logo: a file named in its settings, from the config folder's logos/."""
    runtime = _runtime()
    name = runtime.tenant_settings(g.portal_tenant).portal.get("logo")
    folder = Path(runtime.settings.config_dir) / "logos"
    path = (folder / name) if name else None
    if path is None or path.parent != folder or not path.is_file():
        raise NotFound("no logo")
    return send_file(path, max_age=3600)
