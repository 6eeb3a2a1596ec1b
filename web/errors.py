"""Engine errors and HTTP errors as pages (or JSON under ``/api/``), from one table.

What other areas may rely on (a stable contract):

* ``STATUS_BY_CODE``: the one table from an engine error ``code`` to an HTTP status.
* ``status_of(exc) -> int``.
* ``error_json(exc) -> dict``: ``{"error": {"code", "message", "fields": {field: [msg]}}}``
  with field messages in the request's language; used for every error under ``/api/``.
* An ``EngineError`` that escapes a view is rolled back and answered with its status: views
  need not catch what they only report. Anything else escaping is a bug (500).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from engine.errors import EngineError, ValidationFailed
from web.db import rollback

STATUS_BY_CODE: dict[str, int] = {
    "not_found": 404,
    "forbidden": 403,
    "conflict": 409,
    "invalid_transition": 409,
    "validation_failed": 422,
    "script_error": 422,
    "deploy_error": 422,
}


def status_of(exc: EngineError) -> int:
    return STATUS_BY_CODE.get(exc.code, 500)


def _titles() -> dict[int, str]:
    return {
        400: _("The request was not understood"),
        401: _("Please sign in"),
        403: _("You may not do this"),
        404: _("Not found"),
        405: _("Not allowed here"),
        409: _("Someone else changed this first"),
        413: _("The upload is too large"),
        422: _("The data was refused"),
        429: _("Too many attempts"),
        500: _("Something went wrong on our side"),
    }


def error_json(exc: EngineError | HTTPException) -> dict[str, Any]:
    from web.i18n import field_message

    if isinstance(exc, EngineError):
        fields: dict[str, list[str]] = {}
        if isinstance(exc, ValidationFailed):
            for error in exc.errors:
                fields.setdefault(error.field, []).append(field_message(error.message))
        return {"error": {"code": exc.code, "message": str(exc), "fields": fields}}
    code = (exc.name or "error").lower().replace(" ", "_")
    return {"error": {"code": code, "message": exc.description or exc.name, "fields": {}}}


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _engine_error(exc: EngineError) -> Any:
    rollback()
    status = status_of(exc)
    if _wants_json():
        return error_json(exc), status
    return _page(status, str(exc)), status


def _http_error(exc: HTTPException) -> Any:
    status = exc.code or 500
    if _wants_json():
        return error_json(exc), status
    detail = None
    if status == 400 and exc.description == "csrf":
        detail = _("The form had expired or came from another site. Reload the page and retry.")
    response = exc.get_response()
    response.set_data(_page(status, detail))
    response.content_type = "text/html; charset=utf-8"
    return response


def _page(status: int, detail: str | None) -> str:
    title = _titles().get(status, _titles()[500])
    return render_template("error.html", status=status, title=title, detail=detail)


def init_app(app: Flask) -> None:
    app.register_error_handler(EngineError, _engine_error)
    app.register_error_handler(HTTPException, _http_error)
