"""Driving the web admin and the portal through Flask's test client, as a browser would:
forms carry the CSRF token the page gave, and the session cookie is kept between calls."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


@dataclass
class Web:
    client: FlaskClient
    token: str = ""

    def get(self, path: str, **kw: Any) -> TestResponse:
        response = self.client.get(path, **kw)
        found = _TOKEN.search(response.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True,
             **kw: Any) -> TestResponse:
        if csrf and not self.token:
            self.get("/admin/login")
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.token)
        return self.client.post(path, data=form, **kw)

    def login(self, username: str, password: str | None = None, tenant: str = "acme"
              ) -> TestResponse:
        self.get("/admin/login")
        response = self.post("/admin/login", {
            "username": username,
            "password": password or f"password-{username}",
            "tenant": tenant,
        })
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]
        self.get("/admin/")  # the session's new CSRF token
        return response


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)
