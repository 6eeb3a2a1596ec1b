"""Every interface string has a Kazakh and a Russian translation that keeps its placeholders.

The strings are extracted in-process exactly as ``pybabel extract -F babel.cfg`` does, so a
string added to a template or a view without a catalog entry fails here, not in front of a
Kazakh- or Russian-speaking user.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "web" / "translations"
LANGUAGES = ("kk", "ru")  # English is the source language: msgids are English

# printf-style directives (what ``_("...", name=...)`` and Jinja's newstyle gettext use)
# and str.format fields.
PERCENT = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[diouxXeEfFgGcrsa%]")
BRACES = re.compile(r"\{[^{}]*\}")


def extract_web_messages() -> dict[str, set[str]]:
    """Message id -> the files that use it, from the mapping in ``babel.cfg``."""
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found: dict[str, set[str]] = {}
    for filename, _line, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map
    ):
        ids = message if isinstance(message, tuple) else (message,)
        for msgid in ids:
            if msgid:
                found.setdefault(msgid, set()).add(filename)
    return found


def load_catalog(lang: str) -> Catalog:
    with (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=lang)


def _strings(value: str | tuple[str, ...] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return value if isinstance(value, tuple) else (value,)


def untranslated(catalog: Catalog, msgids: Iterable[str]) -> list[str]:
    """The ids with no entry, a fuzzy entry (never compiled) or an empty translation."""
    gaps = []
    for msgid in sorted(msgids):
        message = catalog.get(msgid)
        strings = _strings(message.string) if message is not None else ()
        if message is None or message.fuzzy or not strings or not all(s.strip() for s in strings):
            gaps.append(msgid)
    return gaps


def placeholders(text: str) -> Counter[str]:
    return Counter(PERCENT.findall(text) + BRACES.findall(text))


def placeholder_errors(catalog: Catalog) -> list[tuple[str, str]]:
    """(msgid, translation) pairs whose placeholders differ, or with a stray ``%``.

    Jinja's newstyle gettext applies ``%`` formatting to every template string, so a lone
    ``%`` in a translation breaks the page even where the msgid has no placeholder.
    """
    errors = []
    for message in catalog:
        if not message.id:
            continue
        source = Counter[str]()
        for msgid in _strings(message.id):
            source |= placeholders(msgid)
        for text in _strings(message.string):
            if not text:
                continue
            if placeholders(text) != source or "%" in PERCENT.sub("", text):
                errors.append((message.id, text))
    return errors


@pytest.fixture(scope="module")
def extracted() -> dict[str, set[str]]:
    return extract_web_messages()


def test_extraction_covers_python_and_templates(extracted):
    files = set().union(*extracted.values())
    assert any(name.endswith(".py") for name in files), files
    assert any(name.endswith(".html") for name in files), files
    assert "Orders of the head" in extracted  # a template string
    assert "Signed and registered: %(numbers)s" in extracted  # a view's flash message


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_web_string_is_translated(lang, extracted):
    gaps = untranslated(load_catalog(lang), extracted)
    detail = "\n".join(f"  {msgid!r} ({', '.join(sorted(extracted[msgid]))})" for msgid in gaps)
    assert not gaps, f"{len(gaps)} string(s) without a {lang} translation:\n{detail}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_translations_keep_placeholders(lang):
    errors = placeholder_errors(load_catalog(lang))
    assert not errors, "\n".join(f"{msgid!r} -> {text!r}" for msgid, text in errors)


def test_the_checks_find_what_they_look_for():
    catalog = Catalog(locale="ru")
    catalog.add("Saved.", "Сохранено.")
    catalog.add("Case #%(id)s started.", "Дело №%(id)s начато.", flags=["python-format"])
    catalog.add("Empty", "")
    catalog.add("Guessed", "Угадано", flags=["fuzzy"])
    catalog.add("Deployed: %(names)s", "Опубликовано", flags=["python-format"])
    catalog.add("Hello, %(who)s", "Здравствуйте, %(whom)s", flags=["python-format"])
    catalog.add("Hello, {who}", "Здравствуйте")
    catalog.add("Done", "Готово на 100%")

    assert untranslated(catalog, ["Saved.", "Empty", "Guessed", "Absent"]) == [
        "Absent",
        "Empty",
        "Guessed",
    ]
    assert [msgid for msgid, _text in placeholder_errors(catalog)] == [
        "Deployed: %(names)s",
        "Hello, %(who)s",
        "Hello, {who}",
        "Done",
    ]
