"""The JSON API's request and response shapes, as marshmallow schemas.

The same classes validate requests, serialize responses and generate the OpenAPI document
(``web/openapi.py``), so the document cannot drift from what the API does. Requests refuse
unknown fields (marshmallow's default ``RAISE``); form data inside ``data`` is checked by the
engine against the task's JSON Schema.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from engine.cases import PERSON_ROLES

# --- requests ---------------------------------------------------------------------------


class StartRequest(Schema):
    data = fields.Dict(
        keys=fields.Str(), load_default=dict, metadata={"description": "Start form fields."}
    )
    case_id = fields.Int(
        allow_none=True,
        load_default=None,
        metadata={
            "description": "Start the procedure for this case (its number becomes the "
            "business key)."
        },
    )


class RevisionRequest(Schema):
    revision = fields.Int(
        allow_none=True,
        load_default=None,
        metadata={
            "description": "The case revision the client saw; a stale one is refused with 409."
        },
    )


class CompleteRequest(RevisionRequest):
    data = fields.Dict(keys=fields.Str(), required=True, metadata={"description": "Form fields."})


class CaseCreateRequest(Schema):
    child_name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    child_iin = fields.Str(allow_none=True, load_default=None, validate=validate.Length(max=20))
    child_birth_date = fields.Date(allow_none=True, load_default=None)
    child_sex = fields.Str(
        allow_none=True, load_default=None, validate=validate.OneOf(["male", "female"])
    )
    district = fields.Str(
        allow_none=True, load_default=None, metadata={"description": "District code."}
    )


class PersonRequest(Schema):
    role = fields.Str(required=True, validate=validate.OneOf(PERSON_ROLES))
    full_name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    iin = fields.Str(allow_none=True, load_default=None)
    phone = fields.Str(allow_none=True, load_default=None)


class CommentRequest(Schema):
    body = fields.Str(required=True, validate=validate.Length(min=1, max=5000))


# --- responses --------------------------------------------------------------------------


class TaskSchema(Schema):
    id = fields.Int()
    instance_id = fields.Int()
    process_key = fields.Str()
    bpmn_id = fields.Str()
    name = fields.Str()
    role = fields.Str(allow_none=True)
    district_id = fields.Int(allow_none=True)
    assignee_id = fields.Int(allow_none=True)
    status = fields.Str(metadata={"description": "ready | completed | cancelled"})
    form_key = fields.Str(allow_none=True)
    due_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    claimed_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    completed_by_id = fields.Int(allow_none=True)


class TaskDetailSchema(Schema):
    task = fields.Nested(TaskSchema)
    form = fields.Dict(allow_none=True, metadata={"description": "The form's JSON Schema."})
    actions = fields.List(fields.Str(), metadata={"description": "Actions this user may take now."})
    revision = fields.Int(metadata={"description": "The case revision to send back."})
    business_key = fields.Str(allow_none=True)


class TaskListSchema(Schema):
    tasks = fields.List(fields.Nested(TaskSchema))


class InstanceSchema(Schema):
    id = fields.Int()
    process_key = fields.Str()
    version = fields.Int()
    status = fields.Str()
    business_key = fields.Str(allow_none=True)
    district_id = fields.Int(allow_none=True)
    revision = fields.Int()
    started_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)
    ready_tasks = fields.List(fields.Nested(TaskSchema))


class CompleteResponse(Schema):
    task = fields.Nested(TaskSchema)
    instance = fields.Nested(InstanceSchema)


class ProcedureSchema(Schema):
    process_key = fields.Str()
    name = fields.Str()
    version = fields.Int()
    start_form_key = fields.Str(allow_none=True)
    start_form = fields.Dict(allow_none=True)


class ProcedureListSchema(Schema):
    procedures = fields.List(fields.Nested(ProcedureSchema))


class PersonSchema(Schema):
    id = fields.Int()
    role = fields.Str()
    full_name = fields.Str()
    iin_masked = fields.Str(allow_none=True)
    phone = fields.Str(allow_none=True)
    added_at = fields.DateTime()


class DocumentSchema(Schema):
    id = fields.Int()
    file_name = fields.Str()
    content_type = fields.Str()
    size = fields.Int()
    sha256 = fields.Str()
    uploaded_by = fields.Str()
    uploaded_at = fields.DateTime()


class ProcedureRunSchema(Schema):
    instance_id = fields.Int()
    process_key = fields.Str()
    status = fields.Str()
    started_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)


class CaseSchema(Schema):
    id = fields.Int()
    number = fields.Str()
    district_id = fields.Int(allow_none=True)
    status = fields.Str()
    child_name = fields.Str()
    child_iin_masked = fields.Str(
        allow_none=True, metadata={"description": "The IIN is personal data: only masked."}
    )
    child_birth_date = fields.Date(allow_none=True)
    child_sex = fields.Str(allow_none=True)
    created_at = fields.DateTime()
    revision = fields.Int()


class CaseFileSchema(CaseSchema):
    people = fields.List(fields.Nested(PersonSchema))
    documents = fields.List(fields.Nested(DocumentSchema))
    procedures = fields.List(fields.Nested(ProcedureRunSchema))


class CaseListSchema(Schema):
    cases = fields.List(fields.Nested(CaseSchema))


class CommentSchema(Schema):
    id = fields.Int()
    author = fields.Str()
    body = fields.Str()
    created_at = fields.DateTime()


class ErrorBody(Schema):
    code = fields.Str(metadata={"description": "Stable machine-readable code."})
    message = fields.Str()
    # "fields" would shadow marshmallow's own attribute: the key is renamed on the wire.
    field_errors = fields.Dict(
        data_key="fields",
        keys=fields.Str(),
        values=fields.List(fields.Str()),
        metadata={"description": "Per-field messages, in the user's language."},
    )


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBody)
