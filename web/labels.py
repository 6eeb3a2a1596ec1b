"""Names, in the user's language, of the code values the engine stores: statuses, audit
actions and order steps, the roles of the people around a child and of the staff, the units
of deadline rules, and the BPMN element types and fields a version diff compares.

Templates show them through one filter, ``{{ order.status|label("order_status") }}``; a
value with no entry here is shown as stored, so a new engine state is visible (in English)
rather than blank until it gets a name.

The English names differ from the stored codes where the same word needs another
translation elsewhere in the interface: an order's ``draft`` is a draft *order* (бұйрық
жобасы), not a process studio draft (жоба), and a finished procedure (аяқталды) is not
a done task (орындалды).

Procedures and their tasks are named in the BPMN files themselves (``name.kk`` and
``name.ru`` properties, engine/procedures.py ``names``): the filters ``process_name`` and
``task_name`` show them.

Staff roles are the other exception to the catalogs: their names in every language are
``engine.identity.ROLES``, the table the ``role`` rows are seeded from and the inbox reads,
so a role is not named twice.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g
from flask_babel import LazyString

# Lazy: the dictionaries are built at import time, the text is chosen per request. Named
# ``_`` so that ``pybabel extract`` (and tests/web/test_i18n_catalogs.py) finds every msgid
# here with its default keywords.
from flask_babel import lazy_gettext as _

from engine import procedures
from engine.identity import ROLES
from web.db import get_session
from web.i18n import current_language
from web.templating import role_names


def _role_name(code: str) -> str:
    return role_names()[code]


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
    # engine.identity.ROLES (the role rows): named from that table, not from the catalogs
    "role": {code: LazyString(_role_name, code) for code in ROLES},
    # engine.library.ElementChange.kind: the tag of any BPMN element with an id inside a
    # process, which is every element of the BPMN 2.0 schema that may stand there, not only
    # those the Department's diagrams use today.
    "bpmn_element": {
        # activities
        "task": _("untyped task"),
        "userTask": _("user task"),
        "manualTask": _("manual task"),
        "serviceTask": _("service task"),
        "scriptTask": _("script task"),
        "businessRuleTask": _("business rule task"),
        "sendTask": _("send task"),
        "receiveTask": _("receive task"),
        "callActivity": _("call activity"),
        "subProcess": _("subprocess"),
        "adHocSubProcess": _("ad hoc subprocess"),
        "transaction": _("transaction subprocess"),
        "callChoreography": _("choreography call"),
        "choreographyTask": _("choreography task"),
        "subChoreography": _("sub-choreography"),
        # events and what triggers them
        "startEvent": _("start event"),
        "endEvent": _("end event"),
        "intermediateCatchEvent": _("intermediate catch event"),
        "intermediateThrowEvent": _("intermediate throw event"),
        "boundaryEvent": _("boundary event"),
        "implicitThrowEvent": _("implicit throw event"),
        "timerEventDefinition": _("timer trigger"),
        "messageEventDefinition": _("message trigger"),
        "signalEventDefinition": _("signal trigger"),
        "errorEventDefinition": _("error trigger"),
        "escalationEventDefinition": _("escalation trigger"),
        "conditionalEventDefinition": _("condition trigger"),
        "compensateEventDefinition": _("compensation trigger"),
        "cancelEventDefinition": _("cancellation trigger"),
        "linkEventDefinition": _("link trigger"),
        "terminateEventDefinition": _("termination trigger"),
        # gateways and flows
        "exclusiveGateway": _("exclusive gateway"),
        "inclusiveGateway": _("inclusive gateway"),
        "parallelGateway": _("parallel gateway"),
        "eventBasedGateway": _("event-based gateway"),
        "complexGateway": _("complex gateway"),
        "sequenceFlow": _("sequence flow"),
        # lanes and notes
        "laneSet": _("set of lanes"),
        "childLaneSet": _("nested set of lanes"),
        "lane": _("lane"),
        "textAnnotation": _("text annotation"),
        "association": _("association"),
        "group": _("group of elements"),
        "documentation": _("documentation"),
        # expressions
        "expression": _("expression"),
        "formalExpression": _("formal expression"),
        "conditionExpression": _("flow condition"),
        "condition": _("trigger condition"),
        "activationCondition": _("activation condition"),
        "completionCondition": _("completion condition"),
        "loopCondition": _("loop condition"),
        "loopCardinality": _("number of instances"),
        "timeDate": _("timer date"),
        "timeDuration": _("timer duration"),
        "timeCycle": _("timer cycle"),
        # loops and multiple instances
        "standardLoopCharacteristics": _("loop marker"),
        "multiInstanceLoopCharacteristics": _("multi-instance marker"),
        "complexBehaviorDefinition": _("multi-instance behaviour rule"),
        "inputDataItem": _("instance input item"),
        "outputDataItem": _("instance output item"),
        # data
        "property": _("BPMN property"),
        "dataObject": _("data object"),
        "dataObjectReference": _("data object reference"),
        "dataStoreReference": _("data store reference"),
        "dataState": _("data state"),
        "ioSpecification": _("inputs and outputs"),
        "ioBinding": _("input and output binding"),
        "dataInput": _("data input"),
        "dataOutput": _("data output"),
        "inputSet": _("set of inputs"),
        "outputSet": _("set of outputs"),
        "dataInputAssociation": _("data input mapping"),
        "dataOutputAssociation": _("data output mapping"),
        "assignment": _("data assignment"),
        "from": _("assignment source"),
        "to": _("assignment target"),
        "transformation": _("data transformation"),
        # performers
        "resourceRole": _("resource role"),
        "performer": _("performer"),
        "humanPerformer": _("human performer"),
        "potentialOwner": _("potential owner"),
        "resourceAssignmentExpression": _("performer assignment expression"),
        "resourceParameterBinding": _("performer parameter binding"),
        "rendering": _("task rendering"),
        # correlation, monitoring
        "correlationKey": _("correlation key"),
        "correlationSubscription": _("correlation subscription"),
        "correlationPropertyBinding": _("correlation property binding"),
        "dataPath": _("correlation data path"),
        "participantAssociation": _("participant association"),
        "auditing": _("audit settings"),
        "monitoring": _("monitoring settings"),
    },
    # engine.library._elements: what a diff compares on one element. Qorgau's own
    # properties ("property role", "property formKey"...) are named in the template.
    "diff_field": {
        "type": _("element type"),
        "name": _("element name"),
        "lane": _("lane"),
        "sourceRef": _("flow source"),
        "targetRef": _("flow target"),
        "attachedToRef": _("attached to"),
        "calledElement": _("called process"),
        "default": _("default flow"),
        "script": _("script"),
        "preScript": _("script before the step"),
        "postScript": _("script after the step"),
        "conditionExpression": _("flow condition"),
        "timeDate": _("timer date"),
        "timeDuration": _("timer duration"),
        "timeCycle": _("timer cycle"),
        "loopCardinality": _("number of instances"),
        "completionCondition": _("completion condition"),
        "loopCondition": _("loop condition"),
    },
}


def label(value: Any, kind: str) -> Any:
    """The name of ``value`` (a code of ``kind``) in the current language, else ``value``.

    An unknown ``kind`` raises ``KeyError``: that is a typo in a template, not data.
    """
    name = LABELS[kind].get(value)
    return value if name is None else str(name)


def _names() -> procedures.Names:
    """The procedures' and tasks' names, read once per request."""
    if "procedure_names" not in g:
        g.procedure_names = procedures.names(get_session())
    return g.procedure_names


def process_name(process_key: str, default: str | None = None) -> str:
    """A procedure's name in the user's language (``{{ t.process_key|process_name }}``)."""
    return _names().process(process_key, current_language(), default)


def task_name(task: Any) -> str:
    """A task's name in the user's language (``{{ t|task_name }}``), from its procedure's
    latest version; the name stored on the task where that has none."""
    return _names().task(task.process_key, task.bpmn_id, current_language(), task.name)


def step_name(bpmn_id: str | None, process_key: str | None = None) -> str:
    """A step of a procedure named by its element id (the case timeline), in the user's
    language when the procedure is known, else the id itself."""
    if not bpmn_id:
        return ""
    if not process_key:
        return bpmn_id
    return _names().task(process_key, bpmn_id, current_language(), bpmn_id)


def init_app(app: Flask) -> None:
    app.jinja_env.filters["label"] = label
    app.jinja_env.filters["process_name"] = process_name
    app.jinja_env.filters["task_name"] = task_name
    app.jinja_env.filters["step_name"] = step_name
