"""In a real browser: the case page draws the procedure's diagram with bpmn-js (served from
node_modules, under the page's Content-Security-Policy) and marks the completed and the
active task."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from engine import cases, tasks
from engine.db import unit_of_work
from engine.identity import actor_for, get_user
from tests.factories import VALID_CHILD
from tests.web.conftest import PASSWORD


def sign_in(page, base, username):
    page.goto(f"{base}/sign-in")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.locator("form.stack button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/inbox$"))


def test_the_diagram_renders_and_highlights_the_active_task(live_server, new_page, clock):
    app, base = live_server
    sessions = app.extensions["qorgau.sessions"]
    with unit_of_work(sessions) as s:
        aigul = actor_for(get_user(s, "aigul"))
        case = cases.create_case(
            s, actor=aigul, child_name="Аружан", child_iin="190515600016", clock=clock
        )
        run = cases.start_case_procedure(
            s, case_id=case.id, process_key="test_intake", actor=aigul, clock=clock
        )
        tasks.complete_task(
            s, task_id=run.ready_tasks[0].id, actor=aigul, data=VALID_CHILD, clock=clock
        )

    page = new_page()
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    sign_in(page, base, "aigul")
    page.goto(f"{base}/cases/{case.id}?procedure={run.id}")

    diagram = page.locator("#diagram")
    expect(diagram).to_have_attribute("data-state", "ready")
    # bpmn-js drew the shapes of the deployed file...
    expect(page.locator('#diagram g.djs-element[data-element-id="register"]')).to_have_count(1)
    # ...and our markers say what is done and what waits.
    active = page.locator('#diagram g.djs-element.qg-active[data-element-id="legal_check"]')
    expect(active).to_have_count(1)
    done = page.locator('#diagram g.djs-element.qg-completed[data-element-id="register"]')
    expect(done).to_have_count(1)
    assert page.locator("#diagram g.qg-active").count() == 1
    # The marker is visible: the active task's box is drawn in the highlight colour.
    stroke = active.locator(".djs-visual > :first-child").evaluate(
        "el => getComputedStyle(el).stroke"
    )
    assert stroke == "rgb(217, 119, 6)"
    assert diagram.get_attribute("data-active") == "legal_check"
    assert problems == []
    # The child's IIN is masked on the page the browser shows.
    expect(page.locator("#child-iin")).to_have_text("190515*****6")
