"""The inbox page: search, filters, pages, saved filters, bulk actions, absences."""

from __future__ import annotations

import re
from html import unescape

from sqlalchemy import select

from engine.db import unit_of_work
from engine.models import AuditEvent, HumanTask, User
from tests.factories import VALID_CHILD
from tests.web.conftest import sign_in_to

TASK_LINK = re.compile(r'href="/tasks/(\d+)"')


def _start_and_register(b, business_key, child):
    response = b.post("/start/test_intake", {"business_key": business_key})
    task_id = int(response.headers["Location"].rsplit("/", 1)[1])
    page = b.get(f"/tasks/{task_id}").get_data(as_text=True)
    revision = re.search(r'name="revision" value="(\d+)"', page).group(1)
    form = {k: str(v) for k, v in {**VALID_CHILD, **child}.items()}
    assert b.post(f"/tasks/{task_id}/complete", {**form, "revision": revision}).status_code == 302
    return task_id


def test_search_by_case_number_name_or_iin_shows_the_iin_masked(app):
    aigul = sign_in_to(app, "aigul")
    _start_and_register(aigul, "KST-1", {"child_name": "Аружан", "child_iin": "190515600016"})
    _start_and_register(aigul, "KST-2", {"child_name": "Бауыржан", "child_iin": "791028302728"})
    lawyer = sign_in_to(app, "maria")

    def cases(**params):
        page = lawyer.get("/inbox", query_string=params).get_data(as_text=True)
        return set(re.findall(r"KST-\d", page)), page

    assert cases()[0] == {"KST-1", "KST-2"}
    assert cases(q="KST-2")[0] == {"KST-2"}
    assert cases(q="Аружан")[0] == {"KST-1"}
    found, page = cases(q="791028302728")
    assert found == {"KST-2"}
    assert "791028*****8" in page
    # The full IIN appears only as the query the user typed (search box, hidden fields).
    assert 'value="791028302728"' in page
    assert "791028302728" not in re.sub(r'value="[^"]*"', "", page)
    assert cases(process="no_such_process")[0] == set()
    assert lawyer.get("/inbox?scope=bogus").status_code == 400
    assert lawyer.get("/inbox?due_before=yesterday").status_code == 400


def test_pages_link_to_the_next_page(app, sessions, clock):
    aigul = sign_in_to(app, "aigul")
    for i in range(3):
        aigul.post("/start/test_intake", {"business_key": f"P-{i}"})
    seen = []
    url = "/inbox"
    from engine import worklist

    original = worklist.search_inbox

    def small_pages(*args, **kwargs):
        return original(*args, **{**kwargs, "limit": 2})

    worklist.search_inbox = small_pages
    try:
        while url:
            page = aigul.get(url).get_data(as_text=True)
            seen.extend(TASK_LINK.findall(page))
            match = re.search(r'<a href="([^"]+)" rel="next"', page)
            url = unescape(match.group(1)) if match else None
    finally:
        worklist.search_inbox = original
    assert len(seen) == len(set(seen)) == 3


def test_saved_filter_private_and_shared_with_a_role(app):
    aigul = sign_in_to(app, "aigul")
    aigul.get("/inbox")
    aigul.post("/inbox/filters", {"name": "Overdue", "overdue": "1"})
    aigul.post("/inbox/filters", {"name": "Team KST", "q": "KST", "shared_role": "specialist"})
    page = aigul.get("/inbox").get_data(as_text=True)
    assert "Overdue" in page and "Team KST" in page
    filter_id = re.search(r'href="/inbox\?filter=(\d+)">Team KST', page).group(1)
    applied = aigul.get(f"/inbox?filter={filter_id}").get_data(as_text=True)
    assert 'value="KST"' in applied
    erzhan = sign_in_to(app, "erzhan")
    page = erzhan.get("/inbox").get_data(as_text=True)
    assert "Team KST" in page and ">Overdue<" not in page
    # Not his to delete; nor may a specialist share with lawyers.
    assert erzhan.post(f"/inbox/filters/{filter_id}/delete").status_code == 403
    erzhan.post("/inbox/filters", {"name": "For lawyers", "shared_role": "lawyer"})
    assert "For lawyers" not in sign_in_to(app, "maria").get("/inbox").get_data(as_text=True)


def test_bulk_claim_and_assign_are_for_leads(app, sessions):
    aigul = sign_in_to(app, "aigul")
    for i in range(3):
        aigul.post("/start/test_intake", {"business_key": f"B-{i}"})
    with unit_of_work(sessions) as s:
        ids = [t.id for t in s.scalars(select(HumanTask).order_by(HumanTask.id))]
    assert aigul.post("/inbox/bulk", {"action": "claim", "task": ids}).status_code == 403
    head = sign_in_to(app, "head")
    page = head.get("/inbox?scope=everyone").get_data(as_text=True)
    assert 'name="task"' in page  # a lead sees the checkboxes
    response = head.post("/inbox/bulk", {"action": "assign", "assignee": "erzhan", "task": ids[:2]})
    assert response.status_code == 302
    refused = head.post("/inbox/bulk", {"action": "assign", "assignee": "maria", "task": ids[2:]})
    assert refused.status_code == 302
    with unit_of_work(sessions) as s:
        erzhan = s.scalar(select(User.id).where(User.username == "erzhan"))
        owners = [s.get(HumanTask, i).assignee_id for i in ids]
    assert owners == [erzhan, erzhan, None]
    assert "maria" in head.get("/inbox").get_data(as_text=True)  # the refusal is shown


def test_absence_gives_the_deputy_the_work_and_the_audit_names_both(app, sessions, clock):
    aigul = sign_in_to(app, "aigul")
    aigul.post("/start/test_intake", {"business_key": "ABS-1"})
    with unit_of_work(sessions) as s:
        task = s.scalars(select(HumanTask)).one()
    aigul.get(f"/tasks/{task.id}")
    aigul.post(f"/tasks/{task.id}/claim")
    aigul.get("/absence")
    refused = aigul.post(
        "/absence", {"deputy": "nobody", "starts_on": "2026-03-02", "ends_on": "2026-03-06"}
    )
    assert refused.status_code == 422
    assert (
        aigul.post(
            "/absence", {"deputy": "analyst", "starts_on": "2026-03-02", "ends_on": "2026-03-06"}
        ).status_code
        == 302
    )
    analyst = sign_in_to(app, "analyst")
    inbox = analyst.get("/inbox").get_data(as_text=True)
    assert "ABS-1" in inbox and "aigul" in inbox
    page = analyst.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert 'value="take_over"' in page
    assert analyst.post(f"/tasks/{task.id}/take-over").status_code == 302
    page = analyst.get(f"/tasks/{task.id}").get_data(as_text=True)
    revision = re.search(r'name="revision" value="(\d+)"', page).group(1)
    form = {k: str(v) for k, v in VALID_CHILD.items()}
    assert (
        analyst.post(f"/tasks/{task.id}/complete", {**form, "revision": revision}).status_code
        == 302
    )
    with unit_of_work(sessions) as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.task_guid == task.task_guid)).all()
        by_action = {e.action: (e.actor, e.on_behalf_of) for e in events}
    assert by_action["task.taken_over"] == ("analyst", "aigul")
    assert by_action["task.completed"] == ("analyst", "aigul")
    assert "aigul" in analyst.get("/absence").get_data(as_text=True)
