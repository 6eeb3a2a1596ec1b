"""The OpenAPI 3 document of ``/api/v1``, generated from the API's own marshmallow schemas.

apispec turns each schema into a component; the paths come from the operations the API
blueprint registered, so a route cannot exist without being documented, nor the other way
round.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from web import api_schemas as s

TITLE = "Qorgau API"
VERSION = "1.0.0"

_STATUS_TEXT = {
    401: "Not signed in: no session and no valid token",
    403: "The user's role or district does not allow it",
    404: "No such object",
    409: "A conflict: already done by someone else (who and when), or a stale revision",
    422: "The data was refused; every bad field is named",
}


def _schema_name(schema: Any) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__.removesuffix("Schema") or cls.__name__


def build_document(operations: Iterable[Any]) -> dict[str, Any]:
    """The OpenAPI 3.0 document for ``operations`` (``web.blueprints.api.Operation``)."""
    spec = APISpec(
        title=TITLE,
        version=VERSION,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin(schema_name_resolver=_schema_name)],
        info={
            "description": "Procedures, tasks and case files of the Department for the "
            "Protection of Children's Rights. Errors are JSON with per-field messages."
        },
        servers=[{"url": "/api/v1"}],
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme(
        "session", {"type": "apiKey", "in": "cookie", "name": "qorgau_session"}
    )
    spec.components.schema("Error", schema=s.ErrorSchema)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        item: dict[str, Any] = {
            "operationId": op.endpoint,
            "summary": op.summary,
            "responses": {},
        }
        if op.parameters:
            item["parameters"] = list(op.parameters)
        if op.request is not None:
            item["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": op.request}},
            }
        ok: dict[str, Any] = {"description": "OK" if op.status == 200 else "Created"}
        if op.response is not None:
            ok["content"] = {"application/json": {"schema": op.response}}
        item["responses"][str(op.status)] = ok
        for status in op.errors:
            item["responses"][str(status)] = {
                "description": _STATUS_TEXT[status],
                "content": {"application/json": {"schema": "Error"}},
            }
        if op.public:
            item["security"] = []
        else:
            item["security"] = [{"bearer": []}, {"session": []}]
        paths.setdefault(op.path, {})[op.method] = item
    for path, methods in sorted(paths.items()):
        spec.path(path=path, operations=methods)
    return spec.to_dict()
