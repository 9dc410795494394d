"""Languages for the pages people read: English and Simplified Chinese.

Catalogues are kept as ``.po`` text only (one file per area, so the admin and the portal
never edit the same file) and compiled into one ``.mo`` under the data folder when the app
starts: compiling takes milliseconds, and no binary file can drift from its source.

Babel parses ``zh_CN`` as ``zh_Hans_CN`` and gettext then never looks in a ``zh_CN``
folder, so the catalogue lives in ``zh_Hans_CN`` and every Chinese tag the browser may send
(``zh``, ``zh-CN``, ``zh-Hans``, ``zh-SG``) is mapped to that one locale.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import request

SOURCE = Path(__file__).parent / "translations"
LOCALES = ("en", "zh_Hans_CN")
COOKIE = "orderhub_lang"


def select_locale() -> str:
    """The first tag we speak, in this order: ``?lang=``, the saved choice, then the
    browser's languages by quality. Werkzeug's ``best_match`` prefers an exact tag over a
    better-quality prefix match, so the header is walked here by hand."""
    tags = [request.args.get("lang"), request.cookies.get(COOKIE)]
    ranked = sorted(request.accept_languages, key=lambda pair: -pair[1])
    tags += [tag for tag, quality in ranked if quality > 0]
    for tag in tags:
        primary = (tag or "").replace("_", "-").split("-")[0].lower()
        if primary == "zh":
            return "zh_Hans_CN"
        if primary == "en":
            return "en"
    return "en"


def html_lang(locale: str) -> str:
    return "zh-Hans" if locale.startswith("zh") else "en"


def load_catalog(locale: str) -> Catalog:
    """Every area's ``.po`` file for one locale, merged."""
    merged = Catalog(locale=locale, domain="messages")
    for path in sorted((SOURCE / locale).glob("*.po")):
        with path.open("rb") as f:
            part = read_po(f, locale=locale)
        for message in part:
            if message.id:
                merged[message.id] = message
    return merged


def compile_catalogs(target: Path) -> Path:
    """Writes ``<target>/<locale>/LC_MESSAGES/messages.mo`` for every locale with sources;
    returns ``target`` for Flask-Babel's ``BABEL_TRANSLATION_DIRECTORIES``."""
    for folder in SOURCE.iterdir():
        if not folder.is_dir():
            continue
        out = target / folder.name / "LC_MESSAGES"
        out.mkdir(parents=True, exist_ok=True)
        compiled = io.BytesIO()
        write_mo(compiled, load_catalog(folder.name))
        final = out / "messages.mo"
        if final.exists() and final.read_bytes() == compiled.getvalue():
            continue
        # Several processes may start at once on one data folder: each writes its own
        # temporary file and renames it into place (atomic; readers never see half a file).
        with tempfile.NamedTemporaryFile(dir=out, suffix=".tmp", delete=False) as f:
            f.write(compiled.getvalue())
        Path(f.name).replace(final)
    return target
