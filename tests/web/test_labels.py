"""Stored code values (statuses, people's roles, deadline units) reach the page in the
reader's language, and follow a change of language."""

from __future__ import annotations

import re

from engine import cases
from engine.calendar import UNITS
from engine.cases import PERSON_ROLES
from engine.db import unit_of_work
from engine.identity import actor_for, get_user
from web.labels import LABELS, label


def _text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def _procedure_status(page: str) -> str:
    found = re.search(r"#\d+</a> — ([^,<]+),", page)
    assert found, page
    return found.group(1)


def test_a_case_page_speaks_kazakh_then_russian(app, sessions, signed_in, clock):
    with unit_of_work(sessions) as s:
        actor = actor_for(get_user(s, "aigul"))
        assert get_user(s, "aigul").language == "kk"
        case = cases.create_case(s, actor=actor, child_name="Аружан", clock=clock)
        cases.add_person(
            s, case_id=case.id, actor=actor, role="mother", full_name="Гүлнар", clock=clock
        )
        run = cases.start_case_procedure(
            s, case_id=case.id, process_key="test_intake", actor=actor, clock=clock
        )
    assert run.status == "running"
    b = signed_in("aigul")

    page = _text(b.get(f"/cases/{case.id}"))
    assert '<dd id="case-status">ашық</dd>' in page
    assert "<strong>анасы</strong>: Гүлнар" in page
    assert _procedure_status(page) == "орындалуда"
    assert '<option value="guardian">қорғаншы</option>' in page

    switched = b.post("/language", {"lang": "ru", "next": f"/cases/{case.id}"})
    assert switched.status_code == 302
    page = _text(b.get(f"/cases/{case.id}"))
    assert '<dd id="case-status">открыто</dd>' in page
    assert "<strong>мать</strong>: Гүлнар" in page
    assert _procedure_status(page) == "выполняется"
    assert '<option value="guardian">опекун</option>' in page


def test_every_engine_code_has_a_name_and_unknown_ones_show_as_stored(app):
    assert set(LABELS["person_role"]) == set(PERSON_ROLES)
    assert set(LABELS["deadline_unit"]) == set(UNITS)
    with app.test_request_context():
        from flask import g

        g.lang = "ru"
        assert label("draft", "order_status") == "проект приказа"
        assert label("completed", "instance_status") == "завершено"
        assert label("completed", "task_status") == "выполнено"
        assert label("archived", "order_status") == "archived"
