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

Tasks name a rule with the ``deadlineRule`` property; a deployment pins the rules as they
were, so a running case keeps the term it started under.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import yaml

from engine.calendar import UNITS, Term, WorkingCalendar, active, local_day
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
    return problems


def _normalise(rule: dict[str, Any]) -> Rule:
    out = dict(rule)
    for bound in ("effective_from", "effective_to"):
        if isinstance(out.get(bound), date):
            out[bound] = out[bound].isoformat()
    out["verified"] = bool(out.get("verified", True))
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
    """A computed due date with what explains it: the rule, its legal basis, the calendar."""

    due_at: datetime
    rule: str
    basis: str
    value: int
    unit: str
    calendar_version: str


def deadline_for(
    rules: dict[str, Any],
    key: str | None,
    event: datetime,
    calendar: WorkingCalendar | None = None,
) -> Deadline | None:
    """The deadline of the term named ``key`` that starts with ``event``, if a rule applies.

    Args:
        rules: a process version's rules (key -> rule or list of rules in time).
        key: the task's ``deadlineRule``; None or empty: no deadline.
        event: when the term starts (the task's creation).
        calendar: the calendar to count in (default: the active one).

    Returns:
        The due date with its basis and calendar version, or None when no rule version is in
        force on the event's day.
    """
    if not key:
        return None
    rule = rule_on(rules.get(key), local_day(event))
    if rule is None:
        return None
    calendar = calendar or active()
    term = Term(int(rule["value"]), str(rule["unit"]))
    return Deadline(
        due_at=calendar.due_at(event, term),
        rule=key,
        basis=str(rule.get("basis") or ""),
        value=term.value,
        unit=term.unit,
        calendar_version=calendar.version,
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
