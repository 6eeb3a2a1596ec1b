"""Every route × every role → allowed or refused, from one table.

The table must name every route the app registers (``app.url_map``): a new route fails
``test_every_route_is_classified`` until someone decides who may use it. A request counts as
refused when it is answered 401, 403 or 404 (a page the role may not know about), or sent to
the sign-in page; anything else (200, a redirect after success, 400/409/422 for the harmless
input sent here) means the role got past authorization.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import date

import pytest

from engine import absence, cases, documents, instances, tasks, worklist
from engine.db import unit_of_work
from tests.factories import VALID_CHILD
from tests.web.conftest import ROLE_USERS, Browser, actors_of, make_app

ANON = "anonymous"
ROLES = [*ROLE_USERS, ANON]
SIGNED_IN = frozenset(ROLE_USERS)
EVERYONE = SIGNED_IN | {ANON}
LEADS = frozenset({"head", "deputy_head", "admin"})
NOBODY: frozenset[str] = frozenset()
# Who may see an open specialist task of Kostanay city: its role there, leads, the auditor.
TASK_READERS = frozenset({"specialist", "auditor"}) | LEADS
# Case files (engine/cases.py decides; the table follows its role sets).
CASE_READERS = frozenset(cases.CASE_ROLES)
CASE_WRITERS = frozenset(cases.CASE_ROLES - cases.READ_ONLY_ROLES)
CASE_CREATORS = frozenset(cases.CREATOR_ROLES)


@dataclass(frozen=True)
class Route:
    path: str  # with {t1} (open task), {t2} (task claimed by the specialist), {filter},
    # {absence}, {case}, {document}, {instance}
    allowed: frozenset[str]
    data: dict = field(default_factory=dict)
    json: dict | None = None
    refused: tuple[int, ...] = (401, 403, 404)


def gate(path: str, allowed: frozenset[str], data: dict | None = None) -> Route:
    """A route whose role check comes before anything else: called with an object that does
    not exist, a role past the gate gets 404 (or 400/422 for the empty input), so only
    401/403 mean refused."""
    return Route(path, allowed, data or {}, refused=(401, 403))


ANALYSTS = frozenset({"analyst"})
STUDIO_READERS = frozenset({"analyst", "admin"})
ADMINS = frozenset({"admin"})
ORDER_STAFF = frozenset({"specialist", "lawyer", "head", "deputy_head", "admin", "auditor"})
# The deputy head signs only under a dated delegation from the head; none exists here.
SIGNERS = frozenset({"head"})

# endpoint -> method -> Route. State-changing requests carry input that is refused after
# authorization (or changes nothing that a later request of the same role depends on).
TABLE: dict[str, dict[str, Route]] = {
    "static": {"GET": Route("/static/qorgau.css", EVERYONE)},
    "healthz": {"GET": Route("/healthz", EVERYONE)},
    "index": {"GET": Route("/", EVERYONE)},
    "auth.sign_in": {
        "GET": Route("/sign-in", EVERYONE),
        # A failed sign-in answers 401 by design; only 403/404 would mean "not for you".
        "POST": Route("/sign-in", EVERYONE, {"username": "x", "password": "y"}, refused=(403, 404)),
    },
    "auth.sign_out": {"POST": Route("/sign-out", EVERYONE)},
    "auth.language": {"POST": Route("/language", EVERYONE, {"lang": "ru"})},
    "inbox.index": {"GET": Route("/inbox", SIGNED_IN)},
    "inbox.save_filter": {"POST": Route("/inbox/filters", SIGNED_IN, {"name": "x"})},
    "inbox.delete_filter": {
        "POST": Route("/inbox/filters/{filter}/delete", frozenset({"specialist", "admin"}))
    },
    "inbox.bulk": {"POST": Route("/inbox/bulk", LEADS, {"action": "claim"})},
    "tasks.show": {"GET": Route("/tasks/{t1}", TASK_READERS)},
    "tasks.claim": {"POST": Route("/tasks/{t1}/claim", frozenset({"specialist"}))},
    "tasks.release": {"POST": Route("/tasks/{t2}/release", frozenset({"specialist"}) | LEADS)},
    "tasks.assign": {"POST": Route("/tasks/{t1}/assign", LEADS, {"assignee": "nobody"})},
    # Only a deputy during an absence takes over; nobody here stands in for anyone.
    "tasks.take_over": {"POST": Route("/tasks/{t2}/take-over", NOBODY)},
    "tasks.save_draft": {
        "POST": Route("/tasks/{t1}/draft", frozenset({"specialist"}), {"child_name": "x"})
    },
    "tasks.complete": {
        "POST": Route("/tasks/{t1}/complete", frozenset({"specialist"}), {"child_age": "x"})
    },
    "start.index": {"GET": Route("/start", SIGNED_IN)},
    "start.form": {
        "GET": Route("/start/test_intake", frozenset({"specialist"})),
        "POST": Route("/start/test_intake", frozenset({"specialist"}), {"business_key": "A"}),
    },
    "absence.index": {"GET": Route("/absence", SIGNED_IN)},
    "absence.record": {"POST": Route("/absence", SIGNED_IN, {"deputy": "nobody"})},
    "absence.cancel": {
        "POST": Route("/absence/{absence}/cancel", frozenset({"specialist"}) | LEADS)
    },
    "admin.users": {"GET": Route("/admin/users", frozenset({"admin"}))},
    "admin.create_user": {"POST": Route("/admin/users", frozenset({"admin"}), {"username": ""})},
    "admin.user": {
        "GET": Route("/admin/users/erzhan", frozenset({"admin"})),
        "POST": Route("/admin/users/erzhan", frozenset({"admin"}), {"language": "xx"}),
    },
    "admin.roles": {"GET": Route("/admin/roles", frozenset({"admin"}))},
    "admin.districts": {
        "GET": Route("/admin/districts", frozenset({"admin"})),
        "POST": Route("/admin/districts", frozenset({"admin"}), {"code": ""}),
    },
    # --- case files (pages) ---
    "cases.index": {"GET": Route("/cases", SIGNED_IN)},
    "cases.create": {"POST": Route("/cases", CASE_CREATORS, {"child_name": ""})},
    "cases.show": {"GET": Route("/cases/{case}", CASE_READERS)},
    "cases.add_person": {"POST": Route("/cases/{case}/people", CASE_WRITERS, {"role": "?"})},
    "cases.add_comment": {"POST": Route("/cases/{case}/comments", CASE_WRITERS, {"text": ""})},
    "cases.upload": {"POST": Route("/cases/{case}/documents", CASE_WRITERS)},
    "cases.download": {"GET": Route("/cases/{case}/documents/{document}", CASE_READERS)},
    # An unknown procedure: past authorization the answer is 404, so only 401/403 refuse.
    "cases.start": {
        "POST": Route(
            "/cases/{case}/procedures", CASE_WRITERS, {"process_key": "none"}, refused=(401, 403)
        )
    },
    "cases.diagram": {"GET": Route("/procedures/{instance}/diagram.json", CASE_READERS)},
    # The viewer's static files (404 only when npm has not installed them).
    "cases.vendor": {
        "GET": Route("/vendor/bpmn-js/assets/bpmn-js.css", EVERYONE, refused=(401, 403))
    },
    # --- JSON API (session cookie here; tokens are tested with the API) ---
    "api.openapi_document": {"GET": Route("/api/v1/openapi.json", EVERYONE)},
    "api.list_procedures": {"GET": Route("/api/v1/procedures", SIGNED_IN)},
    "api.start_procedure": {
        "POST": Route("/api/v1/procedures/test_intake/start", frozenset({"specialist"}), json={})
    },
    "api.inbox": {"GET": Route("/api/v1/inbox", SIGNED_IN)},
    "api.get_task": {"GET": Route("/api/v1/tasks/{t1}", TASK_READERS)},
    "api.claim": {"POST": Route("/api/v1/tasks/{t1}/claim", frozenset({"specialist"}), json={})},
    "api.release": {
        "POST": Route("/api/v1/tasks/{t2}/release", frozenset({"specialist"}) | LEADS, json={})
    },
    "api.complete": {
        "POST": Route(
            "/api/v1/tasks/{t1}/complete",
            frozenset({"specialist"}),
            json={"data": {"child_age": "x"}},
        )
    },
    "api.list_cases": {"GET": Route("/api/v1/cases", SIGNED_IN)},
    "api.create_case": {"POST": Route("/api/v1/cases", CASE_CREATORS, json={"child_name": "Test"})},
    "api.get_case": {"GET": Route("/api/v1/cases/{case}", CASE_READERS)},
    "api.add_person": {
        "POST": Route(
            "/api/v1/cases/{case}/people", CASE_WRITERS, json={"role": "mother", "full_name": "M"}
        )
    },
    "api.add_comment": {
        "POST": Route("/api/v1/cases/{case}/comments", CASE_WRITERS, json={"body": "hi"})
    },
    # --- the analysts' studio ---
    "studio.index": {"GET": gate("/studio/", STUDIO_READERS)},
    "studio.diff": {"GET": gate("/studio/diff", STUDIO_READERS)},
    "studio.edit_version": {"POST": gate("/studio/versions/999999/edit", ANALYSTS)},
    "studio.import_diagram": {"POST": gate("/studio/import", ANALYSTS)},
    "studio.draft": {"GET": gate("/studio/drafts/999999", ANALYSTS)},
    "studio.draft_content": {"GET": gate("/studio/drafts/999999/content", ANALYSTS)},
    "studio.save": {"POST": gate("/studio/drafts/999999/save", ANALYSTS)},
    "studio.validate": {"POST": gate("/studio/drafts/999999/validate", ANALYSTS)},
    "studio.deploy": {"POST": gate("/studio/drafts/999999/deploy", ANALYSTS)},
    "studio.dmn": {"GET": gate("/studio/drafts/999999/dmn/x.dmn", ANALYSTS)},
    "studio.dmn_content": {"GET": gate("/studio/drafts/999999/dmn/x.dmn/content", ANALYSTS)},
    "studio.dmn_save": {"POST": gate("/studio/drafts/999999/dmn/x.dmn/save", ANALYSTS)},
    "studio.form": {
        "GET": gate("/studio/drafts/999999/form", ANALYSTS),
        "POST": gate("/studio/drafts/999999/form", ANALYSTS),
    },
    "studio.preview": {"POST": gate("/studio/preview", ANALYSTS)},
    "studio.rules": {"POST": gate("/studio/drafts/999999/rules", ANALYSTS)},
    "studio.migrate": {
        "GET": gate("/studio/migrate/no_such_process", ADMINS),
        "POST": gate("/studio/migrate/no_such_process", ADMINS),
    },
    # --- the head's orders (Reg 7, 18.9) ---
    "orders.index": {"GET": gate("/orders", ORDER_STAFF)},
    "orders.new": {"GET": gate("/orders/new", frozenset({"specialist"}))},
    "orders.create": {"POST": gate("/orders/new", frozenset({"specialist"}))},
    "orders.detail": {"GET": gate("/orders/999999", ORDER_STAFF)},
    "orders.edit": {"POST": gate("/orders/999999/edit", frozenset({"specialist"}))},
    "orders.review": {"POST": gate("/orders/999999/review", frozenset({"lawyer"}))},
    "orders.notify": {"POST": gate("/orders/999999/notify", frozenset({"specialist"}))},
    "orders.pdf": {"GET": gate("/orders/999999/pdf", ORDER_STAFF)},
    "orders.queue": {"GET": gate("/orders/queue", SIGNERS)},
    "orders.sign": {"POST": gate("/orders/sign", SIGNERS)},
    "orders.return_": {"POST": gate("/orders/999999/return", SIGNERS)},
    # Only the head delegates signing (the deputy head is the one delegated to).
    "orders.delegations": {"GET": gate("/orders/delegations", frozenset({"head"}))},
    "orders.grant": {"POST": gate("/orders/delegations", frozenset({"head"}))},
    "orders.revoke": {"POST": gate("/orders/delegations/999999/revoke", frozenset({"head"}))},
    # Anyone may check a signed order's authenticity.
    "orders.verify": {"GET": gate("/verify", EVERYONE), "POST": gate("/verify", EVERYONE)},
    # --- legal time: calendar overrides (admin), the notification bell ---
    "legal_time.overrides": {"GET": gate("/admin/calendar", ADMINS)},
    "legal_time.add_override": {"POST": gate("/admin/calendar", ADMINS)},
    "legal_time.remove_override": {"POST": gate("/admin/calendar/2099-01-01/remove", ADMINS)},
    "legal_time.unread": {"GET": gate("/notifications", SIGNED_IN)},
    "legal_time.mark_read": {"POST": gate("/notifications/read", SIGNED_IN)},
}

# Requests that change what later requests of the same role rely on go last.
LAST = (
    "tasks.claim",
    "api.claim",
    "tasks.release",
    "api.release",
    "inbox.delete_filter",
    "absence.cancel",
    "auth.sign_out",
    "auth.sign_in",
    "auth.language",
)


def _registered(app):
    found = set()
    for rule in app.url_map.iter_rules():
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found.add((rule.endpoint, method))
    return found


def test_every_route_is_classified(app):
    table = {(endpoint, method) for endpoint, methods in TABLE.items() for method in methods}
    registered = _registered(app)
    assert sorted(registered - table) == [], "routes without an authorization rule"
    assert sorted(table - registered) == [], "rules for routes that no longer exist"


def _world(app, clock):
    sessions = app.extensions["qorgau.sessions"]
    people = actors_of(sessions)
    aigul = people["aigul"]
    with unit_of_work(sessions) as s:
        first = instances.start_process(s, process_key="test_intake", actor=aigul, clock=clock)
        second = instances.start_process(s, process_key="test_intake", actor=aigul, clock=clock)
        t1, t2 = first.ready_tasks[0].id, second.ready_tasks[0].id
        tasks.claim_task(s, task_id=t2, actor=aigul, clock=clock)
        saved = worklist.save_filter(s, actor=aigul, name="f", params={}, now=clock.now())
        away = absence.record_absence(
            s,
            actor=aigul,
            username="aigul",
            deputy="erzhan",
            starts_on=date(2027, 1, 4),
            ends_on=date(2027, 1, 8),
            now=clock.now(),
        )
        case = cases.create_case(
            s,
            actor=aigul,
            child_name=VALID_CHILD["child_name"],
            child_iin=VALID_CHILD["child_iin"],
            clock=clock,
        )
        procedure = cases.start_case_procedure(
            s, case_id=case.id, process_key="test_intake", actor=aigul, clock=clock
        )
        document = documents.upload_document(
            s,
            case_id=case.id,
            actor=aigul,
            file_name="scan.pdf",
            content=b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
            clock=clock,
        )
    return {
        "t1": t1,
        "t2": t2,
        "filter": saved.id,
        "absence": away.id,
        "case": case.id,
        "document": document.id,
        "instance": procedure.id,
    }


@pytest.mark.parametrize("role", ROLES)
def test_route_role_table(role, web_template, tmp_path, clock):
    target = tmp_path / "qorgau.sqlite3"
    shutil.copy(web_template, target)
    app = make_app(f"sqlite:///{target}", clock, tmp_path)
    try:
        ids = _world(app, clock)
        browser = Browser(app.test_client())
        if role != ANON:
            assert browser.sign_in(ROLE_USERS[role]).status_code == 302
        browser.get("/sign-in")
        registered = _registered(app)
        order = sorted(
            registered,
            key=lambda em: (em[0] in LAST, LAST.index(em[0]) if em[0] in LAST else 0, em),
        )
        wrong = []
        for endpoint, method in order:
            route = TABLE.get(endpoint, {}).get(method)
            if route is None:
                continue  # reported by test_every_route_is_classified
            path = route.path.format(**ids)
            if method == "GET":
                response = browser.client.get(path)
            elif route.json is not None:
                response = browser.client.open(
                    path,
                    method=method,
                    json=route.json,
                    headers={"X-CSRF-Token": browser.token or ""},
                )
            else:
                response = browser.client.open(
                    path,
                    method=method,
                    data={**route.data, "csrf_token": browser.token},
                )
            response.close()
            location = response.headers.get("Location", "")
            refused = response.status_code in route.refused or (
                response.status_code == 302
                and location.startswith("/sign-in")
                and endpoint not in ("auth.sign_out", "index")
            )
            expected = role in route.allowed
            if refused == expected:
                wrong.append(
                    f"{method} {path} ({endpoint}): {response.status_code} {location} — "
                    f"expected {'allowed' if expected else 'refused'}"
                )
        assert wrong == []
    finally:
        app.extensions["qorgau.engine"].dispose()
