"""Saved views: a list page's filters kept under a name, the user's own or shared with the
shop. The URL is the state, so a view is its query string; opening it restores the filters,
and changing any filter simply leaves it."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import current_app, flash, g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import delete, or_, select

from hub.core.models import SavedView
from hub.web.admin import can, page

PAGES = {"orders": ("admin.orders", "orders.read"), "tickets": ("admin.tickets", "tickets.read")}
# Sharing a view changes what everyone in the shop sees offered: a writer's decision.
SHARE = {"orders": "orders.write", "tickets": "tickets.write"}
_NOT_KEPT = {"page", "lang", "csrf_token"}
MAX_VIEWS = 50


def _runtime() -> Any:
    return current_app.extensions["orderhub"]


def listed(page_name: str) -> list[dict[str, Any]]:
    """The views offered on a page: the user's own, then the shop's shared ones."""
    principal = g.principal
    with _runtime().session() as session:
        rows = session.scalars(
            select(SavedView)
            .where(
                SavedView.tenant_id == principal.tenant_id,
                SavedView.page == page_name,
                or_(SavedView.user_id == principal.user_id, SavedView.user_id.is_(None)),
            )
            .order_by(SavedView.user_id.is_(None), SavedView.name)
        ).all()
    endpoint = PAGES[page_name][0]
    return [
        {
            "id": v.id,
            "name": v.name,
            "shared": v.user_id is None,
            "url": url_for(endpoint) + (f"?{v.query}" if v.query else ""),
            "query": v.query,
            "mine": v.user_id == principal.user_id or can(SHARE[page_name]),
        }
        for v in rows
    ]


def current_query() -> str:
    return urlencode([(k, v) for k, v in request.args.items(multi=True) if k not in _NOT_KEPT])


@page("/views/<any(orders, tickets):page_name>", None, methods=("POST",))
def save_view(page_name: str) -> ResponseReturnValue:
    endpoint, permission = PAGES[page_name]
    principal = g.principal
    if not can(permission):
        flash(_("Your role may not use this page."), "error")
        return redirect(url_for("admin.dashboard"))
    name = (request.form.get("name") or "").strip()[:60]
    query = (request.form.get("query") or "")[:2000]
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=False) if k not in _NOT_KEPT]
    shared = bool(request.form.get("shared"))
    if shared and not can(SHARE[page_name]):
        flash(_("Only staff who may change these records can share a view."), "error")
        return redirect(url_for(endpoint, **dict(pairs)))
    if not name:
        flash(_("Give the view a name."), "error")
        return redirect(url_for(endpoint, **dict(pairs)))
    owner = "shared" if shared else f"u{principal.user_id}"
    with _runtime().transaction(principal.tenant_id) as session:
        rows = session.execute(
            select(SavedView.owner_key, SavedView.name).where(
                SavedView.tenant_id == principal.tenant_id, SavedView.page == page_name
            )
        ).all()
        if (owner, name) in {(r[0], r[1]) for r in rows}:
            flash(_("A view named %(name)s exists already.", name=name), "error")
            return redirect(url_for(endpoint, **dict(pairs)))
        if len(rows) >= MAX_VIEWS:
            flash(
                _("This page has %(n)s saved views already; delete one first.", n=MAX_VIEWS),
                "error",
            )
            return redirect(url_for(endpoint, **dict(pairs)))
        session.add(
            SavedView(
                tenant_id=principal.tenant_id,
                page=page_name,
                user_id=None if shared else principal.user_id,
                owner_key=owner,
                name=name,
                query=urlencode(pairs),
            )
        )
    flash(_("View %(name)s saved.", name=name))
    return redirect(url_for(endpoint, **dict(pairs)))


@page("/views/<int:view_id>/delete", None, methods=("POST",))
def delete_view(view_id: int) -> ResponseReturnValue:
    principal = g.principal
    with _runtime().transaction(principal.tenant_id) as session:
        view = session.scalar(
            select(SavedView).where(
                SavedView.tenant_id == principal.tenant_id, SavedView.id == view_id
            )
        )
        if view is None or not (
            view.user_id == principal.user_id
            or (view.user_id is None and can(SHARE.get(view.page, "users.write")))
        ):
            flash(_("That view is not yours to delete."), "error")
            return redirect(url_for("admin.dashboard"))
        target = PAGES[view.page][0]
        session.execute(delete(SavedView).where(SavedView.id == view.id))
    flash(_("The view is deleted."))
    return redirect(url_for(target))
