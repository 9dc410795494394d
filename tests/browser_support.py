"""A real browser on the hub: the app served by Werkzeug in a thread, driven by Playwright
through the Debian ``chromium`` package (Playwright's own browser download is not used).

Every page a test opens can be screenshotted at 1280 and 390 px wide under
``test-artifacts/screenshots/`` (``ORDERHUB_SCREENSHOTS`` moves it), and every console error
or uncaught script error fails the test that caused it.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import missing_service
from flask import Flask
from werkzeug.serving import make_server

SHOTS = Path(os.environ.get("ORDERHUB_SCREENSHOTS")
             or Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots")
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 390, "height": 844}
# The elements that reach past the right edge, for the failure message.
WIDEST = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .slice(0, 4)
  .map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)
  .join('; ')"""
ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        missing_service("the chromium browser", "not installed (apt-get install chromium)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        missing_service("playwright", exc)
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def live(app: Flask) -> Iterator[str]:
    """The app on a free local port; its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@dataclass
class Tab:
    """One browser context and page; ``shoot`` screenshots the current page at both widths."""

    page: Any
    base: str
    lang: str = "en"
    errors: list[str] = field(default_factory=list)

    def go(self, path: str) -> Any:
        response = self.page.goto(self.base + path)
        return response

    def shoot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        for size in (WIDE, NARROW):
            self.page.set_viewport_size(size)
            self.page.screenshot(path=SHOTS / f"{name}-{self.lang}-{size['width']}.png",
                                 full_page=True)
            if size is NARROW:
                overflow = self.page.evaluate(
                    "document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 0, (
                    f"{name} scrolls sideways at 390 px by {overflow} px: "
                    + self.page.evaluate(WIDEST)
                )
        self.page.set_viewport_size(WIDE)


@pytest.fixture
def tab(browser: Any, live: str) -> Iterator[Tab]:
    yield from _tab(browser, live, "en")


@pytest.fixture
def tab_zh(browser: Any, live: str) -> Iterator[Tab]:
    yield from _tab(browser, live, "zh")


def _tab(browser: Any, live: str, lang: str) -> Iterator[Tab]:
    tab = new_tab(browser, live, lang)
    yield tab
    tab.page.context.close()
    assert not tab.errors, f"the browser logged errors: {tab.errors[:5]}"


def new_tab(browser: Any, live: str, lang: str = "en", viewport: dict[str, int] = WIDE) -> Tab:
    """A fresh browser context (its own cookies: another person) with one page whose console
    errors are collected in ``tab.errors``."""
    context = browser.new_context(
        viewport=viewport, locale="zh-CN" if lang == "zh" else "en-US",
        extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9" if lang == "zh" else "en-US"},
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    tab = Tab(page, live, lang)
    page.on("console", lambda m: tab.errors.append(m.text) if counts(m, page) else None)
    page.on("pageerror", lambda e: tab.errors.append(str(e)))
    return tab


def counts(message: Any, page: Any) -> bool:
    """A console error that is the page's fault. Chrome also logs the status of the document
    itself when it is a 4xx ("Failed to load resource: … 400"), which a refused form or a
    forbidden page answers on purpose; the tests check those statuses themselves. A failed
    stylesheet, script or image has its own URL and still counts."""
    if message.type != "error":
        return False
    document = message.location.get("url", "") == page.url
    return not (document and message.text.startswith("Failed to load resource"))


def sign_in(tab: Tab, username: str, shop: str = "acme") -> None:
    tab.go("/admin/login")
    tab.page.fill("#f-username", username)
    tab.page.fill("#f-password", f"password-{username}")
    tab.page.fill("#f-tenant", shop)
    tab.page.click("main form button[type=submit]")
    tab.page.wait_for_url("**/admin/")
