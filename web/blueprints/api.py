"""The JSON API under ``/api/v1``: procedures, start, inbox, task, claim, release, complete,
cases.

Each view parses its body with a marshmallow schema, calls one engine service (the same the
pages call), commits, and dumps the result with a schema. Errors are JSON:
``{"error": {"code", "message", "fields": {name: [messages]}}}`` (``web/errors.py``).

Authentication: a personal token (``Authorization: Bearer qg_…``), or the browser session,
in which case writes need the session's ``X-CSRF-Token`` header (checked here, after
authentication, so that an anonymous write gets 401 like an anonymous read). A request that
carries an ``Authorization`` header is never authenticated by its cookie: the header itself
must prove who is asking.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, abort, jsonify, request, session
from marshmallow import Schema, ValidationError

from engine import cases, documents, instances, procedures, tasks, tokens
from engine.errors import FieldError
from engine.errors import ValidationFailed as EngineValidationFailed
from web import api_schemas as s
from web.auth import current_actor, login_required, set_request_actor
from web.csrf import FIELD as CSRF_FIELD
from web.csrf import HEADER as CSRF_HEADER
from web.csrf import SAFE_METHODS, csrf_exempt
from web.db import clock, commit, get_session

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@dataclass(frozen=True)
class Operation:
    """One documented operation; ``web/openapi.py`` turns the list into the document."""

    path: str
    method: str
    endpoint: str
    summary: str
    request: type[Schema] | None
    response: type[Schema] | None
    status: int
    errors: tuple[int, ...]
    parameters: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    public: bool = False


OPERATIONS: list[Operation] = []


def operation(
    path: str,
    method: str,
    *,
    summary: str,
    request_schema: type[Schema] | None = None,
    response: type[Schema] | None = None,
    status: int = 200,
    errors: tuple[int, ...] = (401,),
    parameters: tuple[dict[str, Any], ...] = (),
    public: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a view on the blueprint and describe it for the OpenAPI document."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        OPERATIONS.append(
            Operation(
                path=path,
                method=method.lower(),
                endpoint=view.__name__,
                summary=summary,
                request=request_schema,
                response=response,
                status=status,
                errors=errors,
                parameters=parameters,
                public=public,
            )
        )
        flask_path = path.replace("{", "<").replace("}", ">")
        for name in ("task_id", "case_id"):
            flask_path = flask_path.replace(f"<{name}>", f"<int:{name}>")
        # The API checks CSRF itself (below), after authentication: an anonymous write is
        # answered 401, like an anonymous read, not 400.
        wrapped = csrf_exempt(view if public else login_required(view))
        bp.add_url_rule(flask_path, view.__name__, wrapped, methods=[method.upper()])
        return view

    return decorator


def _path_param(name: str, kind: str = "integer") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


def _query_param(name: str, kind: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": kind},
        "description": description,
    }


# --- authentication and request parsing -------------------------------------------------


@bp.before_request
def _authenticate_token() -> None:
    header = request.headers.get("Authorization")
    if header is None:
        # The session cookie decides; a write must also carry the session's CSRF token.
        if request.method not in SAFE_METHODS and current_actor() is not None:
            expected, sent = session.get(CSRF_FIELD), request.headers.get(CSRF_HEADER)
            if not expected or not sent or not hmac.compare_digest(str(expected), str(sent)):
                abort(400, description="csrf")
        return
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        abort(401, description="use 'Authorization: Bearer <token>'")
    holder = tokens.authenticate_token(get_session(), secret=secret.strip(), now=clock().now())
    if holder is None:
        abort(401, description="the token is unknown or revoked")
    if holder.touched:
        commit()  # "last used" moved on: keep it even if the view fails
    set_request_actor(holder.actor, language=holder.language)


def _flatten(messages: Any, prefix: str = "") -> list[FieldError]:
    """marshmallow's nested messages as one list of (dotted field, message)."""
    found: list[FieldError] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = prefix if key == "_schema" else (f"{prefix}.{key}" if prefix else str(key))
            found.extend(_flatten(value, name or "(body)"))
    elif isinstance(messages, list):
        for item in messages:
            found.extend(_flatten(item, prefix))
    else:
        found.append(FieldError(prefix or "(body)", _plain(str(messages))))
    return found


_MARSHMALLOW_PHRASES = {
    "Missing data for required field.": "required",
    "Unknown field.": "unknown field",
    "Field may not be null.": "required",
}


def _plain(message: str) -> str:
    # The engine's stable phrases, so that web/i18n.py translates them like form errors.
    return _MARSHMALLOW_PHRASES.get(message, message)


def _load(schema: type[Schema]) -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None and not request.get_data():
        body = {}
    if not isinstance(body, dict):
        raise EngineValidationFailed(
            "the request body must be a JSON object", [FieldError("(body)", "a JSON object")]
        )
    try:
        return _instance(schema).load(body)
    except ValidationError as exc:
        raise EngineValidationFailed("the request has errors", _flatten(exc.messages)) from exc


def _reply(schema: type[Schema], value: Any, status: int = 200) -> Any:
    return jsonify(_instance(schema).dump(value)), status


@functools.cache
def _instance(schema: type[Schema]) -> Schema:
    """One instance per schema class: building one copies every field, and our schemas keep
    no state between ``load``/``dump`` calls, so threads may share them."""
    return schema()


def _actor() -> Any:
    actor = current_actor()
    assert actor is not None  # login_required ran
    return actor


# --- procedures -------------------------------------------------------------------------


@operation(
    "/procedures",
    "get",
    summary="Procedures the user may start",
    response=s.ProcedureListSchema,
)
def list_procedures() -> Any:
    found = procedures.startable(get_session(), actor=_actor())
    return _reply(s.ProcedureListSchema, {"procedures": found})


@operation(
    "/procedures/{process_key}/start",
    "post",
    summary="Start a procedure, optionally for a case",
    request_schema=s.StartRequest,
    response=s.InstanceSchema,
    status=201,
    errors=(401, 403, 404, 409, 422),
    parameters=(_path_param("process_key", "string"),),
)
def start_procedure(process_key: str) -> Any:
    body = _load(s.StartRequest)
    db, actor = get_session(), _actor()
    if body["case_id"] is not None:
        view = cases.start_case_procedure(
            db,
            case_id=body["case_id"],
            process_key=process_key,
            actor=actor,
            data=body["data"],
            clock=clock(),
        )
    else:
        view = instances.start_process(
            db, process_key=process_key, actor=actor, data=body["data"], clock=clock()
        )
    commit()
    return _reply(s.InstanceSchema, view, 201)


# --- tasks ------------------------------------------------------------------------------


@operation(
    "/inbox",
    "get",
    summary="Open tasks claimed by the user or offered to their roles (and district)",
    response=s.TaskListSchema,
    parameters=(_query_param("limit", "integer", "At most this many (1-200, default 50)."),),
)
def inbox() -> Any:
    limit = request.args.get("limit", default=50, type=int) or 50
    found = tasks.inbox(get_session(), actor=_actor(), limit=max(1, min(limit, 200)))
    return _reply(s.TaskListSchema, {"tasks": found})


@operation(
    "/tasks/{task_id}",
    "get",
    summary="A task with its form schema and the actions the user may take",
    response=s.TaskDetailSchema,
    errors=(401, 403, 404),
    parameters=(_path_param("task_id"),),
)
def get_task(task_id: int) -> Any:
    detail = tasks.task_detail(get_session(), task_id=task_id, actor=_actor())
    return _reply(
        s.TaskDetailSchema,
        {
            "task": detail.task,
            "form": detail.form,
            "actions": sorted(detail.actions),
            "revision": detail.revision,
            "business_key": detail.business_key,
        },
    )


_TASK_ERRORS = (401, 403, 404, 409, 422)


@operation(
    "/tasks/{task_id}/claim",
    "post",
    summary="Claim a task offered to one of the user's roles",
    request_schema=s.RevisionRequest,
    response=s.TaskSchema,
    errors=_TASK_ERRORS,
    parameters=(_path_param("task_id"),),
)
def claim(task_id: int) -> Any:
    return _move_task(tasks.claim_task, task_id)


@operation(
    "/tasks/{task_id}/release",
    "post",
    summary="Put a claimed task back in its queue",
    request_schema=s.RevisionRequest,
    response=s.TaskSchema,
    errors=_TASK_ERRORS,
    parameters=(_path_param("task_id"),),
)
def release(task_id: int) -> Any:
    return _move_task(tasks.release_task, task_id)


def _move_task(service: Any, task_id: int) -> Any:
    """Claim or release: the same request (a revision) and the same reply (the task)."""
    body = _load(s.RevisionRequest)
    view = service(
        get_session(),
        task_id=task_id,
        actor=_actor(),
        clock=clock(),
        expected_revision=body["revision"],
    )
    commit()
    return _reply(s.TaskSchema, view)


@operation(
    "/tasks/{task_id}/complete",
    "post",
    summary="Complete a task with its form data; the process runs on to its next wait",
    request_schema=s.CompleteRequest,
    response=s.CompleteResponse,
    errors=_TASK_ERRORS,
    parameters=(_path_param("task_id"),),
)
def complete(task_id: int) -> Any:
    body = _load(s.CompleteRequest)
    db = get_session()
    done = tasks.complete(
        db,
        task_id=task_id,
        actor=_actor(),
        data=body["data"],
        clock=clock(),
        expected_revision=body["revision"],
    )
    commit()
    return _reply(s.CompleteResponse, {"task": done.task, "instance": done.instance})


# --- cases ------------------------------------------------------------------------------


@operation(
    "/cases",
    "get",
    summary="Cases the user may see, newest first",
    response=s.CaseListSchema,
    parameters=(_query_param("q", "string", "Case number, full IIN or part of the name."),),
)
def list_cases() -> Any:
    found = cases.list_cases(get_session(), actor=_actor(), search=request.args.get("q"))
    return _reply(s.CaseListSchema, {"cases": found})


@operation(
    "/cases",
    "post",
    summary="Open a case file for a child",
    request_schema=s.CaseCreateRequest,
    response=s.CaseFileSchema,
    status=201,
    errors=(401, 403, 409, 422),
)
def create_case() -> Any:
    body = _load(s.CaseCreateRequest)
    view = cases.create_case(
        get_session(),
        actor=_actor(),
        child_name=body["child_name"],
        child_iin=body["child_iin"],
        child_birth_date=body["child_birth_date"],
        child_sex=body["child_sex"],
        district_code=body["district"],
        clock=clock(),
    )
    commit()
    return _case_file(view.id, 201)


def _case_file(case_id: int, status: int = 200) -> Any:
    db, actor = get_session(), _actor()
    view = cases.get_case(db, case_id=case_id, actor=actor)
    payload = {
        **{name: getattr(view, name) for name in s.CaseSchema().fields},
        "people": cases.case_people(db, case_id=case_id, actor=actor),
        "documents": documents.case_documents(db, case_id=case_id, actor=actor),
        "procedures": cases.case_procedures(db, case_id=case_id, actor=actor),
    }
    return _reply(s.CaseFileSchema, payload, status)


@operation(
    "/cases/{case_id}",
    "get",
    summary="A case file: the child (IIN masked), people, documents, procedures",
    response=s.CaseFileSchema,
    errors=(401, 403, 404),
    parameters=(_path_param("case_id"),),
)
def get_case(case_id: int) -> Any:
    return _case_file(case_id)


@operation(
    "/cases/{case_id}/people",
    "post",
    summary="Add someone around the child (applicant, guardian, parent)",
    request_schema=s.PersonRequest,
    response=s.PersonSchema,
    status=201,
    errors=(401, 403, 404, 409, 422),
    parameters=(_path_param("case_id"),),
)
def add_person(case_id: int) -> Any:
    body = _load(s.PersonRequest)
    view = cases.add_person(get_session(), case_id=case_id, actor=_actor(), clock=clock(), **body)
    commit()
    return _reply(s.PersonSchema, view, 201)


@operation(
    "/cases/{case_id}/comments",
    "post",
    summary="Comment on a case",
    request_schema=s.CommentRequest,
    response=s.CommentSchema,
    status=201,
    errors=(401, 403, 404, 409, 422),
    parameters=(_path_param("case_id"),),
)
def add_comment(case_id: int) -> Any:
    body = _load(s.CommentRequest)
    view = cases.add_comment(
        get_session(), case_id=case_id, actor=_actor(), body=body["body"], clock=clock()
    )
    commit()
    return _reply(s.CommentSchema, view, 201)


# --- the document -----------------------------------------------------------------------


@operation("/openapi.json", "get", summary="This API as an OpenAPI 3 document", public=True)
def openapi_document() -> Any:
    from web.openapi import build_document

    return jsonify(build_document(OPERATIONS))
