"""A CSRF token per browser session, checked on every request that changes something.

What other areas may rely on (a stable contract):

* Every POST, PUT, PATCH and DELETE must carry the session's token, as the form field
  ``csrf_token`` or the header ``X-CSRF-Token``; otherwise it is refused with 400 before
  any view runs.
* In templates: ``{{ csrf_field() }}`` inside every ``<form method="post">``, and
  ``csrf_token()`` for the ``<meta name="csrf-token">`` that scripts send as the header.
* Requests carrying an ``Authorization`` header are exempt: a browser never adds that header
  by itself, so another site cannot forge one. Whoever accepts such a request (the API's
  personal tokens) must authenticate it or refuse it; a session cookie alone never passes.
* ``csrf_exempt(view)`` marks a view that needs no token (none should, besides machines).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, abort, current_app, request, session
from markupsafe import Markup, escape

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"

F = TypeVar("F", bound=Callable[..., Any])


def csrf_token() -> str:
    token = session.get(FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        session[FIELD] = token
    return token


def csrf_field() -> Markup:
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(escape(csrf_token()))


def csrf_exempt(view: F) -> F:
    view._csrf_exempt = True  # type: ignore[attr-defined]
    return view


def _check() -> None:
    if request.method in SAFE_METHODS or request.headers.get("Authorization"):
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, "_csrf_exempt", False):
        return
    expected = session.get(FIELD)
    sent = request.headers.get(HEADER) or request.form.get(FIELD)
    if not expected or not sent or not hmac.compare_digest(str(expected), str(sent)):
        abort(400, description="csrf")


def init_app(app: Flask) -> None:
    app.before_request(_check)
    app.jinja_env.globals.update(csrf_token=csrf_token, csrf_field=csrf_field)
