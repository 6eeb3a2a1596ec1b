"""Task forms rendered on the server from their JSON Schema, and the way back: the strings a
browser posts coerced to the schema's types before the engine validates them.

Works for any form schema: each property becomes one field, labelled from ``x-i18n`` in the
user's language (the property name when no label exists). Field kinds follow the schema:
string (a textarea when ``maxLength`` is large), integer, number, boolean, enum, and the
formats ``date``, ``iin`` and ``phone-kz``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from werkzeug.datastructures import MultiDict

from engine.errors import FieldError
from web.i18n import current_language, field_message

LONG_TEXT = 500


@dataclass
class FormField:
    name: str
    label: str
    help: str | None
    kind: str  # text | textarea | integer | number | boolean | enum | date | iin | phone
    required: bool
    value: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)


def _i18n(node: dict[str, Any]) -> dict[str, Any]:
    texts = node.get("x-i18n") or {}
    lang = current_language()
    return texts.get(lang) or texts.get("kk") or texts.get("en") or {}


def form_title(schema: dict[str, Any] | None, default: str) -> str:
    if not schema:
        return default
    return _i18n(schema).get("title") or schema.get("title") or default


def form_help(schema: dict[str, Any] | None) -> str | None:
    if not schema:
        return None
    return _i18n(schema).get("help") or schema.get("description")


def _kind(spec: dict[str, Any]) -> str:
    kind = spec.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if "enum" in spec:
        return "enum"
    if kind == "boolean":
        return "boolean"
    if kind in ("integer", "number"):
        return kind
    fmt = spec.get("format")
    if fmt in ("date", "iin"):
        return fmt
    if fmt == "phone-kz":
        return "phone"
    if (spec.get("maxLength") or 0) > LONG_TEXT:
        return "textarea"
    return "text"


def build_fields(
    schema: dict[str, Any] | None,
    values: dict[str, Any] | None = None,
    errors: list[FieldError] | None = None,
) -> list[FormField]:
    """The fields of a form, filled with ``values`` and carrying ``errors`` translated."""
    if not schema:
        return []
    values = values or {}
    required = set(schema.get("required") or ())
    by_field: dict[str, list[str]] = {}
    for error in errors or []:
        by_field.setdefault(error.field.split(".")[0], []).append(field_message(error.message))
    fields = []
    for name, spec in (schema.get("properties") or {}).items():
        if not isinstance(spec, dict):
            continue
        texts = _i18n(spec)
        kind = _kind(spec)
        options: list[tuple[str, str]] = []
        if kind == "enum":
            labels = texts.get("options") or {}
            options = [(str(v), str(labels.get(str(v), v))) for v in spec["enum"]]
        attrs: dict[str, Any] = {}
        for key, attr in (("minimum", "min"), ("maximum", "max"), ("maxLength", "maxlength")):
            if key in spec:
                attrs[attr] = spec[key]
        raw = values.get(name, spec.get("default", ""))
        if isinstance(raw, bool):
            raw = "true" if raw else "false"
        fields.append(
            FormField(
                name=name,
                label=texts.get("title") or spec.get("title") or name.replace("_", " "),
                help=texts.get("help") or spec.get("description"),
                kind=kind,
                required=name in required,
                value="" if raw is None else str(raw),
                options=options,
                errors=by_field.get(name, []),
                attrs=attrs,
            )
        )
    return fields


def raw_values(schema: dict[str, Any] | None, form: MultiDict[str, str]) -> dict[str, str]:
    """The posted strings of the schema's fields (for drafts and for showing them again)."""
    names = (schema or {}).get("properties") or {}
    values = {}
    for name, spec in names.items():
        # An unanswered yes/no question is kept as "" so that it is reported as required.
        if name in form or _kind(spec if isinstance(spec, dict) else {}) == "boolean":
            values[name] = form.get(name, "")
    return values


def coerce(
    schema: dict[str, Any] | None, raw: dict[str, str]
) -> tuple[dict[str, Any], list[FieldError]]:
    """Turn posted strings into the schema's types. Empty optional fields are left out (an
    empty required one is left out too, so the engine reports it as required)."""
    data: dict[str, Any] = {}
    problems: list[FieldError] = []
    props = (schema or {}).get("properties") or {}
    for name, text in raw.items():
        spec = props.get(name)
        if not isinstance(spec, dict):
            continue
        text = text.strip()
        kind = _kind(spec)
        if text == "":
            continue
        if kind == "integer":
            try:
                data[name] = int(text)
            except ValueError:
                problems.append(FieldError(name, "not a whole number"))
        elif kind == "number":
            try:
                data[name] = float(text.replace(",", "."))
            except ValueError:
                problems.append(FieldError(name, "not a number"))
        elif kind == "boolean":
            data[name] = text in ("true", "on", "1", "yes")
        elif kind == "enum":
            # Enum values may be numbers in the schema; post back the matching value.
            data[name] = next((v for v in spec["enum"] if str(v) == text), text)
        else:
            data[name] = text
    return data, problems


def date_range(form: MultiDict[str, str]) -> tuple[date, date] | list[FieldError]:
    """The ``starts_on`` and ``ends_on`` dates of a posted form (absences, delegations), or
    an error for each of them that is not a date."""
    days: dict[str, date] = {}
    errors = []
    for name in ("starts_on", "ends_on"):
        try:
            days[name] = date.fromisoformat(form.get(name, "").strip())
        except ValueError:
            errors.append(FieldError(name, "not a valid date"))
    return errors or (days["starts_on"], days["ends_on"])
