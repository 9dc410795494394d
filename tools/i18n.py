"""Keep the Chinese catalogue whole: which page strings have no translation yet.

    python tools/i18n.py missing              # list them (exit 1 when any)
    python tools/i18n.py add --into admin.po  # append them, untranslated, to that file
    python tools/i18n.py add --into inventory.po --from admin/inventory --from stock
                                              # only those found in files whose path has one
                                              # of these parts

Strings are extracted with Babel from hub/web (Python ``_``/``gettext``/``lazy_gettext``/
``_l``/``ngettext``, and Jinja templates). Each area keeps its own ``.po`` file under
hub/web/ui/translations/zh_Hans_CN/; the hub merges them when it starts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "hub" / "web"
LOCALE = "zh_Hans_CN"
FOLDER = WEB / "ui" / "translations" / LOCALE
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
METHODS = [
    ("**/templates/**.html", "jinja2.ext:babel_extract"),
    ("**.py", "python"),
]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.do", "trimmed": "true"}}


def extracted() -> Iterator[tuple[str | tuple[str, str], str]]:
    """(message id, where) for every translatable string of the pages."""
    for filename, lineno, message, _comments, _context in extract_from_dir(
        WEB, METHODS, options_map=OPTIONS, keywords=KEYWORDS
    ):
        yield message, f"{filename}:{lineno}"


def catalogue() -> dict[str, object]:
    merged: dict[str, object] = {}
    for path in sorted(FOLDER.glob("*.po")):
        with path.open("rb") as f:
            for m in read_po(f, locale=LOCALE):
                if m.id:
                    merged[m.id if isinstance(m.id, str) else m.id[0]] = m
    return merged


def missing() -> dict[str | tuple[str, str], list[str]]:
    known = catalogue()
    out: dict[str | tuple[str, str], list[str]] = {}
    for message, where in extracted():
        key = message if isinstance(message, str) else message[0]
        entry = known.get(key)
        if entry is None:
            out.setdefault(message, []).append(where)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=("missing", "add"))
    parser.add_argument("--into", default="admin.po")
    parser.add_argument("--from", dest="sources", action="append", default=[])
    args = parser.parse_args()
    found = missing()
    if args.sources:
        found = {m: p for m, p in found.items() if any(s in w for w in p for s in args.sources)}
    if args.command == "missing":
        for message, places in found.items():
            print(f"{message!r}  ({places[0]})")
        return 1 if found else 0
    path = FOLDER / args.into
    if path.exists():
        with path.open("rb") as f:
            catalog = read_po(f, locale=LOCALE)
    else:
        catalog = Catalog(locale=LOCALE, project="OrderHub")
    for message, places in found.items():
        catalog.add(
            message,
            string="" if isinstance(message, str) else ("",),
            locations=[(p.rsplit(":", 1)[0], int(p.rsplit(":", 1)[1])) for p in places],
        )
    FOLDER.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, catalog, omit_header=False, no_location=True, width=100)
    print(f"{len(found)} string(s) added to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
