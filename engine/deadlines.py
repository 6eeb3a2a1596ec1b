"""Deadline rules: legal terms as data, never as code.

A rules file (``bpmn/deadlines.yaml``) maps a key to a rule, or to a list of rules that
follow each other in time when the law changes::

    rules:
      guardianship.service_term:
        basis: "MES Order No. 158, Appendix 3"
        value: 19
        unit: working_days          # working_days | calendar_days | hours
        effective_from: 2020-05-09  # optional
        effective_to: null          # optional, inclusive
        verified: false             # the legal brief could not confirm the value
        counts_from: data.application_date   # optional, see below

Tasks name a rule with the ``deadlineRule`` property; a deployment pins the rules as they
were, so a running case keeps the term it started under.

What a term counts from (``counts_from``, the same for every version of a key):

- ``task`` (the default): the task's creation, for the internal terms of one step;
- ``case``: the start of the case, i.e. its registration;
- ``data.<name>``: a date (or date-time, in the Department's time zone when it has none)
  held in the case's variable ``<name>``, such as the day an application was received: a
  state service's term runs from the receipt of the applicant's documents to the result
  (the service standards of MES Order No. 158 of 24.04.2020), through every step of the
  service, whenever each step begins.
  Without a readable value the term counts from the start of the case, and a day in the
  future counts as today.

The version of a rule in force on the day the term starts is the one applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import yaml

from engine.calendar import DEPARTMENT_TZ, UNITS, Term, WorkingCalendar, active, local_day
from engine.errors import Problem

Rule = dict[str, Any]


def parse_rules(name: str, content: bytes) -> tuple[dict[str, list[Rule]], list[Problem]]:
    """Read a rules file; every problem names the rule key and what is wrong."""
    try:
        doc = yaml.safe_load(content.decode("utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        return {}, [
            Problem(name, None if line is None else line + 1, None, f"not valid YAML: {exc}")
        ]
    rules = doc.get("rules") if isinstance(doc, dict) else None
    if not isinstance(rules, dict):
        return {}, [Problem(name, None, None, 'a rules file needs a top-level "rules:" mapping')]
    result: dict[str, list[Rule]] = {}
    problems: list[Problem] = []
    for key, body in rules.items():
        versions = body if isinstance(body, list) else [body]
        checked = []
        for rule in versions:
            found = _check_rule(name, str(key), rule)
            problems.extend(found)
            if not found:
                checked.append(_normalise(rule))
        if len({rule["counts_from"] for rule in checked}) > 1:
            problems.append(
                Problem(name, None, str(key), "every version of a rule must count from the same")
            )
        result[str(key)] = checked
    return result, problems


def _check_rule(name: str, key: str, rule: object) -> list[Problem]:
    if not isinstance(rule, dict):
        return [Problem(name, None, key, "a rule must be a mapping")]
    problems = []
    value = rule.get("value")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        problems.append(Problem(name, None, key, "value must be a whole number of units >= 0"))
    if rule.get("unit") not in UNITS:
        problems.append(Problem(name, None, key, f"unit must be one of {', '.join(UNITS)}"))
    if not str(rule.get("basis") or "").strip():
        problems.append(Problem(name, None, key, "basis (the legal basis) is required"))
    for bound in ("effective_from", "effective_to"):
        if rule.get(bound) is not None and not isinstance(rule.get(bound), date):
            problems.append(Problem(name, None, key, f"{bound} must be a date (YYYY-MM-DD)"))
    counts_from = rule.get("counts_from", "task")
    if not _counts_from_known(counts_from):
        problems.append(
            Problem(
                name,
                None,
                key,
                'counts_from must be "task", "case" or "data.<variable>" (a variable name)',
            )
        )
    return problems


def _counts_from_known(value: object) -> bool:
    if value in ("task", "case"):
        return True
    return (
        isinstance(value, str)
        and value.startswith("data.")
        and value[5:].isidentifier()
        and not value[5:].startswith("_")
    )


def _normalise(rule: dict[str, Any]) -> Rule:
    out = dict(rule)
    for bound in ("effective_from", "effective_to"):
        if isinstance(out.get(bound), date):
            out[bound] = out[bound].isoformat()
    out["verified"] = bool(out.get("verified", True))
    out["counts_from"] = out.get("counts_from", "task")
    return out


def rule_on(versions: list[Rule] | Rule | None, on: date) -> Rule | None:
    """The version of a rule in force on ``on``."""
    if versions is None:
        return None
    for rule in versions if isinstance(versions, list) else [versions]:
        start, end = rule.get("effective_from"), rule.get("effective_to")
        if start and on < date.fromisoformat(start):
            continue
        if end and on > date.fromisoformat(end):
            continue
        return rule
    return None


@dataclass(frozen=True)
class Deadline:
    """A computed due date with what explains it: the rule, its legal basis, the calendar,
    and the moment the term counts from."""

    due_at: datetime
    rule: str
    basis: str
    value: int
    unit: str
    calendar_version: str
    starts_at: datetime


def term_start(
    counts_from: str,
    task_created: datetime,
    case_started: datetime | None = None,
    data: Mapping[str, Any] | None = None,
) -> datetime:
    """The moment a term counts from (see the module docstring), never after the task's
    creation."""
    start = case_started or task_created
    if counts_from == "task":
        start = task_created
    elif counts_from.startswith("data."):
        given = _moment((data or {}).get(counts_from[5:]))
        if given is not None:
            start = given
    return min(start, task_created)


def _moment(value: object) -> datetime | None:
    """A date or date-time given as a value or as ISO text; a bare date is its first moment
    in the Department's time zone, as is a date-time without a zone."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=DEPARTMENT_TZ)
    if isinstance(value, date):
        return datetime.combine(value, time.min, DEPARTMENT_TZ)
    return None


def deadline_for(
    rules: dict[str, Any],
    key: str | None,
    event: datetime,
    calendar: WorkingCalendar | None = None,
    *,
    case_started: datetime | None = None,
    data: Mapping[str, Any] | None = None,
) -> Deadline | None:
    """The deadline of the term named ``key`` for a task created at ``event``, if a rule
    applies.

    Args:
        rules: a process version's rules (key -> rule or list of rules in time).
        key: the task's ``deadlineRule``; None or empty: no deadline.
        event: when the task was created.
        calendar: the calendar to count in (default: the active one).
        case_started, data: the case's start and variables, for rules that count from them.

    Returns:
        The due date with its basis, calendar version and start, or None when no rule
        version is in force on the day the term starts.
    """
    if not key:
        return None
    versions = rules.get(key)
    listed = versions if isinstance(versions, list) else [versions] if versions else []
    if not listed:
        return None
    # Every version of a key counts from the same (parse_rules checks it).
    start = term_start(str(listed[0].get("counts_from") or "task"), event, case_started, data)
    rule = rule_on(versions, local_day(start))
    if rule is None:
        return None
    calendar = calendar or active()
    term = Term(int(rule["value"]), str(rule["unit"]))
    return Deadline(
        due_at=calendar.due_at(start, term),
        rule=key,
        basis=str(rule.get("basis") or ""),
        value=term.value,
        unit=term.unit,
        calendar_version=calendar.version,
        starts_at=start,
    )


def due_for(
    rules: dict[str, Any],
    key: str | None,
    event: datetime,
    calendar: WorkingCalendar | None = None,
) -> datetime | None:
    """When the term named ``key`` that starts with ``event`` runs out, if the rule applies."""
    deadline = deadline_for(rules, key, event, calendar)
    return deadline.due_at if deadline else None
