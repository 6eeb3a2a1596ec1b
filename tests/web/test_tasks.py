"""The task page: forms from JSON Schema, errors per field in the user's language, drafts,
stale forms, exactly the allowed actions, escaping; on SQLite and PostgreSQL."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from engine import instances
from engine.db import unit_of_work
from engine.models import AuditEvent, HumanTask, ProcessInstance, User
from tests.factories import VALID_CHILD
from tests.web.conftest import sign_in_to

TASK_LINK = re.compile(r'href="/tasks/(\d+)"')


def _start(b, key="test_intake", **form):
    response = b.post(f"/start/{key}", form)
    assert response.status_code == 302, response.get_data(as_text=True)
    match = re.search(r"/tasks/(\d+)$", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def _revision(page):
    return re.search(r'name="revision" value="(\d+)"', page).group(1)


def _complete(b, task_id, data):
    page = b.get(f"/tasks/{task_id}").get_data(as_text=True)
    return b.post(f"/tasks/{task_id}/complete", {**data, "revision": _revision(page)})


def _snapshot(sessions):
    with unit_of_work(sessions) as s:
        return (
            sorted((i.id, i.revision, i.status) for i in s.scalars(select(ProcessInstance))),
            sorted((t.id, t.status, t.assignee_id) for t in s.scalars(select(HumanTask))),
            s.scalar(select(func.count()).select_from(AuditEvent)),
        )


def test_specialist_starts_completes_and_the_lawyer_gets_the_next_task(any_app):
    specialist = sign_in_to(any_app, "aigul")
    task_id = _start(specialist, business_key="KST-2026-001")
    page = specialist.get(f"/tasks/{task_id}").get_data(as_text=True)
    # The form comes from the schema: every field, with the kinds the schema asks for.
    for name in ("child_name", "child_age", "child_iin", "phone", "note"):
        assert f'name="{name}"' in page
    assert 'id="f-note"' in page and "<textarea" in page  # long text
    assert 'type="tel"' in page
    form = {k: str(v) for k, v in VALID_CHILD.items()}
    assert _complete(specialist, task_id, form).status_code == 302
    lawyer = sign_in_to(any_app, "maria")
    inbox = lawyer.get("/inbox").get_data(as_text=True)
    assert "Legal check" in inbox and "KST-2026-001" in inbox
    assert "190515*****6" in inbox and "190515600016" not in inbox  # the IIN masked
    [legal_id] = [int(i) for i in TASK_LINK.findall(inbox)]
    legal = lawyer.get(f"/tasks/{legal_id}").get_data(as_text=True)
    assert '<select id="f-opinion"' in legal  # enum
    assert _complete(lawyer, legal_id, {"opinion": "approve"}).status_code == 302
    with unit_of_work(any_app.extensions["qorgau.sessions"]) as s:
        instance = s.scalars(select(ProcessInstance)).one()
        assert instance.status == "completed"
        data = instances.instance_data(s, instance_id=instance.id)
        assert data["child_age"] == 6 and data["opinion"] == "approve"  # coerced to int


def test_a_wrong_iin_is_refused_naming_the_field_in_the_users_language(app, sessions):
    b = sign_in_to(app, "aigul")
    b.post("/language", {"lang": "ru", "next": "/inbox"})
    task_id = _start(b)
    before = _snapshot(sessions)
    bad = {**{k: str(v) for k, v in VALID_CHILD.items()}, "child_iin": "190515600017"}
    response = _complete(b, task_id, bad)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "неверная контрольная цифра" in page  # "the check digit is wrong", in Russian
    assert '<a href="#f-child_iin">' in page
    assert 'aria-invalid="true"' in page
    assert "190515600017" in page  # what was typed is kept for correcting
    assert _snapshot(sessions) == before  # nothing changed
    b.post("/language", {"lang": "kk", "next": "/inbox"})
    page = _complete(b, task_id, bad).get_data(as_text=True)
    assert "бақылау цифры қате" in page


def test_missing_and_mistyped_fields_are_all_reported(app, sessions):
    b = sign_in_to(app, "aigul")
    b.post("/language", {"lang": "en", "next": "/inbox"})
    task_id = _start(b)
    response = _complete(b, task_id, {"child_age": "six", "phone": "8701"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "not a whole number" in page  # child_age, refused before the engine
    assert page.count("required") >= 2  # child_name and child_iin
    assert "+7XXXXXXXXXX" in page  # the phone format


def test_form_data_with_markup_is_shown_escaped(app):
    b = sign_in_to(app, "aigul")
    task_id = _start(b, business_key="<b>K</b>")
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    data = {**{k: str(v) for k, v in VALID_CHILD.items()}, "child_name": evil}
    # Shown back in a refused form, and in a saved draft ...
    page = _complete(b, task_id, {**data, "child_iin": "1"}).get_data(as_text=True)
    assert evil not in page and "&lt;script&gt;" in page
    b.post(f"/tasks/{task_id}/draft", data)
    page = b.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert evil not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    # ... and in the next inbox, where the child's name is listed.
    assert _complete(b, task_id, data).status_code == 302
    lawyer = sign_in_to(app, "maria")
    inbox = lawyer.get("/inbox").get_data(as_text=True)
    assert evil not in inbox and "&lt;img src=x onerror=alert(1)&gt;" in inbox
    assert "<b>K</b>" not in inbox and "&lt;b&gt;K&lt;/b&gt;" in inbox


def test_a_stale_form_posted_twice_is_refused_saying_who_and_when(app, sessions):
    b = sign_in_to(app, "aigul")
    task_id = _start(b)
    page = b.get(f"/tasks/{task_id}").get_data(as_text=True)
    form = {**{k: str(v) for k, v in VALID_CHILD.items()}, "revision": _revision(page)}
    assert b.post(f"/tasks/{task_id}/complete", form).status_code == 302
    before = _snapshot(sessions)
    again = b.post(f"/tasks/{task_id}/complete", form)
    assert again.status_code == 409
    text = again.get_data(as_text=True)
    # aigul's language is Kazakh: "already completed by Aigul at 02.03.2026 10:00".
    assert "Aigul" in text and "02.03.2026 10:00" in text and "орындап қойған" in text
    assert _snapshot(sessions) == before


def test_a_form_opened_before_someone_else_changed_the_case_is_refused(app, sessions):
    specialist = sign_in_to(app, "aigul")
    task_id = _start(specialist)
    page = specialist.get(f"/tasks/{task_id}").get_data(as_text=True)
    stale = _revision(page)
    # Meanwhile a colleague claims and releases the task: the case's revision moves on.
    colleague = sign_in_to(app, "erzhan")
    colleague.get(f"/tasks/{task_id}")
    assert colleague.post(f"/tasks/{task_id}/claim").status_code == 302
    assert colleague.post(f"/tasks/{task_id}/release").status_code == 302
    before = _snapshot(sessions)
    form = {**{k: str(v) for k, v in VALID_CHILD.items()}, "revision": stale}
    response = specialist.post(f"/tasks/{task_id}/complete", form)
    assert response.status_code == 409
    assert _snapshot(sessions) == before


def test_the_actions_shown_are_exactly_the_allowed_ones(app, sessions):
    aigul = sign_in_to(app, "aigul")
    task_id = _start(aigul)

    def buttons(b):
        page = b.get(f"/tasks/{task_id}").get_data(as_text=True)
        return set(re.findall(r'name="do" value="(\w+)"', page))

    assert buttons(aigul) == {"claim", "complete", "draft"}
    aigul.post(f"/tasks/{task_id}/claim")
    assert buttons(aigul) == {"release", "complete", "draft"}
    erzhan = sign_in_to(app, "erzhan")  # same role and district, but claimed by aigul
    assert buttons(erzhan) == set()
    assert erzhan.post(f"/tasks/{task_id}/complete", {"revision": "1"}).status_code == 403
    head = sign_in_to(app, "head")
    assert buttons(head) == {"release", "assign"}
    rudny = sign_in_to(app, "rudny_spec")  # another district: may not even see it
    assert rudny.get(f"/tasks/{task_id}").status_code == 403
    lawyer = sign_in_to(app, "maria")
    assert lawyer.get(f"/tasks/{task_id}").status_code == 403
    assert lawyer.post(f"/tasks/{task_id}/claim").status_code == 403


def test_a_lead_assigns_and_a_wrong_assignee_is_refused(app, sessions):
    aigul = sign_in_to(app, "aigul")
    task_id = _start(aigul)
    head = sign_in_to(app, "head")
    head.get(f"/tasks/{task_id}")
    refused = head.post(f"/tasks/{task_id}/assign", {"assignee": "maria"})
    assert refused.status_code == 422 and "specialist" in refused.get_data(as_text=True)
    assert head.post(f"/tasks/{task_id}/assign", {"assignee": "erzhan"}).status_code == 302
    with unit_of_work(sessions) as s:
        erzhan = s.scalar(select(User.id).where(User.username == "erzhan"))
        assert s.get(HumanTask, task_id).assignee_id == erzhan
    assert aigul.post(f"/tasks/{task_id}/assign", {"assignee": "aigul"}).status_code == 403


def test_a_draft_is_kept_per_user_and_dropped_on_completion(app, sessions):
    from engine.models.workspace import TaskDraft

    b = sign_in_to(app, "aigul")
    task_id = _start(b)
    b.get(f"/tasks/{task_id}")
    assert (
        b.post(f"/tasks/{task_id}/draft", {"child_name": "Аружан", "child_age": "x"}).status_code
        == 302
    )
    page = b.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert 'value="Аружан"' in page and 'value="x"' in page
    other = sign_in_to(app, "erzhan")
    assert 'value="Аружан"' not in other.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert _complete(b, task_id, {k: str(v) for k, v in VALID_CHILD.items()}).status_code == 302
    with unit_of_work(sessions) as s:
        assert s.scalar(select(func.count()).select_from(TaskDraft)) == 0


def test_boolean_fields_are_radio_buttons_coerced_to_booleans(app, sessions):
    b = sign_in_to(app, "aigul")
    task_id = _start(b, key="test_loop")
    page = b.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert 'type="radio" name="complete" value="true"' in page
    # Nothing chosen: the field is required.
    assert _complete(b, task_id, {}).status_code == 422
    assert _complete(b, task_id, {"complete": "false"}).status_code == 302
    with unit_of_work(sessions) as s:
        [again] = s.scalars(select(HumanTask).where(HumanTask.status == "ready")).all()
        assert again.bpmn_id == "review" and again.id != task_id
    assert _complete(b, again.id, {"complete": "true"}).status_code == 302
    with unit_of_work(sessions) as s:
        assert s.scalars(select(ProcessInstance)).one().status == "completed"


def test_a_start_form_is_rendered_and_validated(app, sessions):
    b = sign_in_to(app, "aigul")
    page = b.get("/start/test_timer").get_data(as_text=True)
    assert 'name="due"' in page
    refused = b.post("/start/test_timer", {"due": ""})
    assert refused.status_code == 422
    with unit_of_work(sessions) as s:
        assert s.scalar(select(func.count()).select_from(ProcessInstance)) == 0


def test_only_startable_procedures_are_listed(app):
    lawyer = sign_in_to(app, "maria")
    page = lawyer.get("/start").get_data(as_text=True)
    assert "test_intake" not in page  # started by specialists only
    assert lawyer.get("/start/test_intake").status_code == 404
    assert lawyer.post("/start/test_intake", {}).status_code == 404
    assert "test_intake" in sign_in_to(app, "aigul").get("/start").get_data(as_text=True)
