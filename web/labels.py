"""Names, in the user's language, of the code values the engine stores: statuses, audit
actions and order steps, the roles of the people around a child, the units of deadline
rules.

Templates show them through one filter, ``{{ order.status|label("order_status") }}``; a
value with no entry here is shown as stored, so a new engine state is visible (in English)
rather than blank until it gets a name.

The English names differ from the stored codes where the same word needs another
translation elsewhere in the interface: an order's ``draft`` is a draft *order* (бұйрық
жобасы), not a process studio draft (жоба), and a finished procedure (аяқталды) is not
a done task (орындалды).
"""

from __future__ import annotations

from typing import Any

from flask import Flask

# Lazy: the dictionaries are built at import time, the text is chosen per request. Named
# ``_`` so that ``pybabel extract`` (and tests/web/test_i18n_catalogs.py) finds every msgid
# here with its default keywords.
from flask_babel import lazy_gettext as _

LABELS: dict[str, dict[str, Any]] = {
    # engine.models.cases.Case.status
    "case_status": {
        "open": _("open"),
        "closed": _("closed"),
    },
    # engine.models.core.ProcessInstance.status
    "instance_status": {
        "running": _("running"),
        "waiting": _("waiting"),
        "completed": _("finished"),
        "error": _("error"),
        "suspended": _("suspended"),
        "terminated": _("terminated"),
    },
    # engine.models.core.HumanTask.status
    "task_status": {
        "ready": _("to do"),
        "completed": _("completed"),
        "cancelled": _("cancelled"),
    },
    # engine.orders: draft → review → signing → registered → notified
    "order_status": {
        "draft": _("draft order"),
        "review": _("in legal review"),
        "signing": _("awaiting signature"),
        "registered": _("signed and registered"),
        "notified": _("notified"),
    },
    # engine.audit: the actions of a case's timeline
    "audit_action": {
        "case.created": _("case opened"),
        "case.comment_added": _("comment added"),
        "case.document_uploaded": _("document attached"),
        "case.person_added": _("person added"),
        "case.procedure_started": _("procedure started for the case"),
        "process.started": _("procedure started"),
        "process.completed": _("procedure finished"),
        "process.suspended": _("procedure suspended"),
        "process.resumed": _("procedure resumed"),
        "process.terminated": _("procedure terminated"),
        "process.migrated": _("moved to a new process version"),
        "task.created": _("task created"),
        "task.claimed": _("task taken into work"),
        "task.released": _("task returned to the queue"),
        "task.assigned": _("task assigned"),
        "task.taken_over": _("task taken over"),
        "task.completed": _("task done"),
        "task.cancelled": _("task cancelled"),
        "incident.opened": _("failure recorded"),
        "incident.retried": _("failed step retried"),
        "message.correlated": _("message received"),
        "timers.fired": _("term came due"),
    },
    # engine.orders: the steps of an order's history
    "order_step": {
        "drafted": _("drafted"),
        "edited": _("draft edited"),
        "submitted": _("sent for legal review"),
        "approved": _("approved by the lawyer"),
        "returned": _("returned with comments"),
        "signed": _("signed"),
        "notified": _("delivered"),
    },
    # engine.cases.PERSON_ROLES
    "person_role": {
        "applicant": _("applicant"),
        "guardian": _("guardian"),
        "mother": _("mother"),
        "father": _("father"),
        "relative": _("relative"),
        "other": _("other"),
    },
    # engine.calendar.UNITS
    "deadline_unit": {
        "working_days": _("working days"),
        "calendar_days": _("calendar days"),
        "hours": _("hours"),
    },
}


def label(value: Any, kind: str) -> Any:
    """The name of ``value`` (a code of ``kind``) in the current language, else ``value``.

    An unknown ``kind`` raises ``KeyError``: that is a typo in a template, not data.
    """
    name = LABELS[kind].get(value)
    return value if name is None else str(name)


def init_app(app: Flask) -> None:
    app.jinja_env.filters["label"] = label
