"""The Chinese catalogue covers every page string, exactly once in spirit: nothing missing,
nothing fuzzy (gettext compiles those out silently), no placeholder lost, nothing stale."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from babel.messages.pofile import read_po

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import i18n

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _entries() -> list[tuple[str, object]]:
    out = []
    for path in sorted(i18n.FOLDER.glob("*.po")):
        with path.open("rb") as f:
            out += [(path.name, m) for m in read_po(f, locale=i18n.LOCALE) if m.id]
    return out


def test_every_page_string_has_a_translation() -> None:
    missing = i18n.missing()
    assert not missing, "untranslated (run tools/i18n.py add): " + ", ".join(
        f"{m!r} at {p[0]}" for m, p in list(missing.items())[:20]
    )


def test_no_entry_is_fuzzy_or_empty_or_loses_a_placeholder() -> None:
    for name, m in _entries():
        ids = [m.id] if isinstance(m.id, str) else list(m.id)
        strings = [m.string] if isinstance(m.string, str) else list(m.string)
        assert not m.fuzzy, f"{name}: fuzzy {m.id!r}"
        assert all(s.strip() for s in strings), f"{name}: empty {m.id!r}"
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        for s in strings:
            assert set(PLACEHOLDER.findall(s)) == wanted, f"{name}: placeholders of {m.id!r}"


def test_no_entry_is_stale() -> None:
    used = {m if isinstance(m, str) else m[0] for m, _ in i18n.extracted()}
    stale = [(name, m.id) for name, m in _entries()
             if (m.id if isinstance(m.id, str) else m.id[0]) not in used]
    assert not stale, f"translations nothing uses any more: {stale[:20]}"


def test_the_compiled_catalogue_answers_in_chinese(tmp_path: Path) -> None:
    from babel.support import Translations

    from hub.web.ui.i18n import compile_catalogs

    compile_catalogs(tmp_path)
    t = Translations.load(str(tmp_path), ["zh_Hans_CN"])
    assert t.gettext("Sign in") == "登录"
    assert t.ngettext("%(num)s order", "%(num)s orders", 3) == "%(num)s 个订单"


def test_a_string_kept_in_two_areas_reads_the_same_in_both() -> None:
    """Areas' files are merged when the hub starts and the later one wins: a string in two
    files with two translations would read differently from what one area's author meant."""
    seen: dict[object, tuple[str, object]] = {}
    clashes = []
    for name, m in _entries():
        key = m.id if isinstance(m.id, str) else tuple(m.id)
        if key in seen and seen[key][1] != m.string:
            clashes.append((key, seen[key][0], name))
        seen.setdefault(key, (name, m.string))
    assert not clashes, f"translated differently in two files: {clashes[:10]}"


def test_many_processes_may_compile_into_one_folder_at_once(tmp_path: Path) -> None:
    import threading

    from hub.web.ui.i18n import compile_catalogs

    failures: list[BaseException] = []

    def compile_once() -> None:
        try:
            compile_catalogs(tmp_path)
        except BaseException as exc:  # pragma: no cover - the failure being tested
            failures.append(exc)

    threads = [threading.Thread(target=compile_once) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert not list(tmp_path.rglob("*.tmp"))
    assert (tmp_path / "zh_Hans_CN" / "LC_MESSAGES" / "messages.mo").stat().st_size > 1000
