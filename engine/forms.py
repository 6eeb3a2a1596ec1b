"""User-task forms: JSON Schema files in ``forms/``, pinned to each process version.

A form file is a JSON Schema (draft 2020-12) object schema whose properties are the fields.
Labels and help in Kazakh, Russian and English live beside the standard keywords under
``x-i18n`` (``{"kk": {"title": ..., "help": ...}, "ru": ..., "en": ...}``) so that the schema
stays a plain schema any tool can read.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from datetime import date
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

from engine.errors import FieldError, Problem, ValidationFailed
from engine.iin import is_valid_iin, validate_iin

FORMAT_CHECKER = FormatChecker()

_PHONE = re.compile(r"^\+7\d{10}$")


@FORMAT_CHECKER.checks("iin", raises=())
def _check_iin(value: object) -> bool:
    return not isinstance(value, str) or is_valid_iin(value)


@FORMAT_CHECKER.checks("phone-kz", raises=())
def _check_phone(value: object) -> bool:
    return not isinstance(value, str) or bool(_PHONE.match(value))


@FORMAT_CHECKER.checks("date", raises=ValueError)
def _check_date(value: object) -> bool:
    if isinstance(value, str):
        date.fromisoformat(value)
    return True


def load_form_file(path: Path) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Read and check one form file; problems name the file and what is wrong."""
    name = path.name
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(name, None, None, f"cannot read the form: {exc}")]
    except json.JSONDecodeError as exc:
        return None, [Problem(name, exc.lineno, None, f"not valid JSON: {exc.msg}")]
    return schema, check_form_schema(name, schema)


def check_form_schema(name: str, schema: object) -> list[Problem]:
    if not isinstance(schema, dict):
        return [Problem(name, None, None, "a form must be a JSON object schema")]
    problems = []
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        problems.append(Problem(name, None, None, f"invalid JSON Schema at {where}: {exc.message}"))
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        problems.append(
            Problem(name, None, None, 'a form schema needs "type": "object" and "properties"')
        )
    return problems


def validate_submission(
    form_key: str | None, schema: dict[str, Any] | None, data: object
) -> dict[str, Any]:
    """Check submitted data against the task's form; return only the declared fields.

    Raises:
        ValidationFailed: naming every field that is unknown, missing or wrong, and why.
    """
    if not isinstance(data, dict):
        raise ValidationFailed("the form data must be an object of fields")
    if schema is None:
        if data:
            errors = [FieldError(k, "this task takes no data") for k in sorted(data)]
            raise ValidationFailed(f"task form {form_key or '(none)'} takes no fields", errors)
        return {}
    declared = schema.get("properties", {})
    errors = [FieldError(k, "unknown field") for k in sorted(data) if k not in declared]
    validator = _validator(schema)
    for error in sorted(validator.iter_errors(data), key=lambda e: list(e.path)):
        if error.validator == "additionalProperties" and not error.path:
            continue  # each extra field is already reported by name as "unknown field"
        errors.append(FieldError(_field_of(error), _message_of(error)))
    if errors:
        raise ValidationFailed(f"the form {form_key} has errors", _unique(errors))
    return {k: v for k, v in data.items() if k in declared}


# Validators of the forms in use, by the identity of their schema: a version's forms are
# one shared, never-changed dictionary per process (engine/runtime.py, ``VersionInfo``).
_VALIDATORS: OrderedDict[int, tuple[dict[str, Any], Draft202012Validator]] = OrderedDict()
_VALIDATORS_LOCK = threading.Lock()


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    with _VALIDATORS_LOCK:
        hit = _VALIDATORS.get(id(schema))
        if hit is not None and hit[0] is schema:
            _VALIDATORS.move_to_end(id(schema))
            return hit[1]
    validator = Draft202012Validator(schema, format_checker=FORMAT_CHECKER)
    with _VALIDATORS_LOCK:
        # Holding the schema keeps its id from being reused while the entry lives.
        _VALIDATORS[id(schema)] = (schema, validator)
        while len(_VALIDATORS) > 512:
            _VALIDATORS.popitem(last=False)
    return validator


def _field_of(error: Any) -> str:
    if error.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        if missing:
            prefix = ".".join(str(p) for p in error.path)
            return f"{prefix}.{missing[0]}" if prefix else missing[0]
    if error.validator == "additionalProperties":
        return ".".join(str(p) for p in error.path) or "(form)"
    return ".".join(str(p) for p in error.path) or "(form)"


def _message_of(error: Any) -> str:
    kind = error.validator
    if kind == "required":
        return "required"
    if kind == "format" and error.validator_value == "iin" and isinstance(error.instance, str):
        try:
            validate_iin(error.instance)
        except ValidationFailed as exc:
            return exc.errors[0].message if exc.errors else exc.message
    if kind == "format":
        return f"not a valid {error.validator_value}"
    if kind == "type":
        return f"must be of type {error.validator_value}"
    if kind == "enum":
        return "must be one of: " + ", ".join(str(v) for v in error.validator_value)
    if kind in {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}:
        return f"{kind} is {error.validator_value}"
    if kind in {"minLength", "maxLength", "pattern", "minItems", "maxItems"}:
        return f"{kind} {error.validator_value}"
    return error.message


def _unique(errors: list[FieldError]) -> list[FieldError]:
    seen: set[tuple[str, str]] = set()
    result = []
    for e in errors:
        if (e.field, e.message) not in seen:
            seen.add((e.field, e.message))
            result.append(e)
    return result
