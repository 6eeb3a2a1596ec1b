"""The interface in Kazakh (the default), Russian or English, chosen per user.

What other areas may rely on (a stable contract):

* ``LANGUAGES``: the language codes, Kazakh first.
* ``current_language() -> str``: the language of this request: the signed-in user's
  ``language``, else the one chosen in this browser session, else Kazakh.
* ``field_message(message) -> str``: an engine ``FieldError`` message (a stable English
  phrase such as ``"required"`` or ``"the check digit is wrong"``) in the current language.
* ``localized(obj, "name") -> str``: ``obj.name_kk`` / ``name_ru`` / ``name_en`` by language.
* In templates: ``_()`` / ``gettext()``, ``current_language()``, ``LANGUAGES``.
* The catalogs are ``web/translations/<lang>/LC_MESSAGES/messages.po`` (English msgids);
  they are compiled to ``.mo`` when the app starts, so no binary file is kept in git.
  New strings: ``pybabel extract -F babel.cfg --no-location -w 100 -o var/messages.pot .``,
  then ``pybabel update -N -w 100 -i var/messages.pot -d web/translations``, and translate;
  ``tests/web/test_i18n_catalogs.py`` fails while a string lacks its kk or ru translation.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, g, session
from flask_babel import Babel
from flask_babel import gettext as _

from engine.config import VAR_DIR

LANGUAGES = ("kk", "ru", "en")
DEFAULT_LANGUAGE = "kk"
SOURCE_DIR = Path(__file__).parent / "translations"


def current_language() -> str:
    lang = g.get("lang")
    if lang in LANGUAGES:
        return lang
    from web.auth import current_user  # the user's own choice wins

    preference = g.get("lang_preference")  # given with a bearer token's user
    user = None if preference in LANGUAGES else current_user()
    if preference in LANGUAGES:
        lang = preference
    elif user is not None and user.language in LANGUAGES:
        lang = user.language
    elif session.get("lang") in LANGUAGES:
        lang = session["lang"]
    else:
        lang = DEFAULT_LANGUAGE
    g.lang = lang
    return lang


def localized(obj: Any, attr: str = "name") -> str:
    """``obj.<attr>_<lang>`` in the current language (Kazakh when that one is empty)."""
    lang = current_language()
    return getattr(obj, f"{attr}_{lang}", None) or getattr(obj, f"{attr}_kk", "")


def compile_catalogs(target: Path) -> Path:
    """Compile every ``messages.po`` into ``target`` (only when the source is newer).

    Each file is written to a temporary name and renamed, so that several web processes
    starting at once never read a half-written catalog.
    """
    for po_path in SOURCE_DIR.glob("*/LC_MESSAGES/messages.po"):
        lang = po_path.parent.parent.name
        mo_path = target / lang / "LC_MESSAGES" / "messages.mo"
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=lang)
        fd, tmp = tempfile.mkstemp(dir=mo_path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            write_mo(out, catalog)
        os.replace(tmp, mo_path)
    return target


def init_app(app: Flask) -> None:
    target = Path(app.config.get("I18N_DIR") or VAR_DIR / "i18n")
    compile_catalogs(target)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(target)
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Asia/Qostanay")
    Babel(app, locale_selector=current_language)
    app.jinja_env.globals.update(
        current_language=current_language, LANGUAGES=LANGUAGES, localized=localized
    )


# --- engine messages --------------------------------------------------------------------


# The engine's FieldError messages are stable English phrases (engine/forms.py,
# engine/iin.py); each one is translated here, the variable parts carried over.
def _fixed() -> dict[str, str]:
    return {
        "required": _("required"),
        "unknown field": _("unknown field"),
        "this task takes no data": _("this task takes no data"),
        "must be exactly 12 digits": _("must be exactly 12 digits"),
        "the 7th digit (century and sex) must be 1 to 6": _(
            "the 7th digit (century and sex) must be 1 to 6"
        ),
        "the first 6 digits are not a real date of birth": _(
            "the first 6 digits are not a real date of birth"
        ),
        "the check digit is wrong": _("the check digit is wrong"),
        "no IIN is issued with these first 11 digits": _(
            "no IIN is issued with these first 11 digits"
        ),
        "not a valid phone-kz": _("not a phone number in the form +7XXXXXXXXXX"),
        "not a valid date": _("not a valid date"),
        "not a valid iin": _("not a valid IIN"),
        "not a number": _("not a number"),
        "not a whole number": _("not a whole number"),
    }


def _types() -> dict[str, str]:
    return {
        "integer": _("a whole number"),
        "number": _("a number"),
        "string": _("text"),
        "boolean": _("yes or no"),
        "object": _("a group of fields"),
        "array": _("a list"),
    }


_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^must be of type (\w+)$"), "type"),
    (re.compile(r"^must be one of: (.*)$"), "enum"),
    (re.compile(r"^(minimum|exclusiveMinimum) is (.+)$"), "min"),
    (re.compile(r"^(maximum|exclusiveMaximum) is (.+)$"), "max"),
    (re.compile(r"^minLength (\d+)$"), "minlen"),
    (re.compile(r"^maxLength (\d+)$"), "maxlen"),
    (re.compile(r"^pattern (.+)$"), "pattern"),
]


def field_message(message: str) -> str:
    """Translate one engine field message into the current language."""
    fixed = _fixed().get(message)
    if fixed is not None:
        return fixed
    for pattern, kind in _PATTERNS:
        match = pattern.match(message)
        if not match:
            continue
        if kind == "type":
            return _("must be %(what)s", what=_types().get(match[1], match[1]))
        if kind == "enum":
            return _("must be one of: %(values)s", values=match[1])
        if kind == "min":
            return _("must be at least %(value)s", value=match[2])
        if kind == "max":
            return _("must be at most %(value)s", value=match[2])
        if kind == "minlen":
            return _("must be at least %(n)s characters long", n=match[1])
        if kind == "maxlen":
            return _("must be at most %(n)s characters long", n=match[1])
        return _("does not have the expected form")
    return message
