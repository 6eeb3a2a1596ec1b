"""In a real browser: an analyst opens a deployed process in the studio, adds a user task
with a role, a form and a deadline rule through the properties panel, validates, sees the
planted error marked on that task, fixes it and deploys version 2; a specialist then starts
a case on version 2 while an older case continues on version 1; the administrator's
migration dry run lists a blocked case."""

from __future__ import annotations

import re
import shutil
import threading

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from werkzeug.serving import make_server

from engine import instances, tasks
from engine.db import unit_of_work
from engine.models import ProcessInstance, ProcessVersion
from tests.browser.conftest import _free_port
from tests.factories import ENGINE_DATA, VALID_CHILD
from tests.web import conftest as web_fixtures
from tests.web.conftest import PASSWORD

STUDIO_JS = ENGINE_DATA.parents[2] / "web" / "static" / "studio" / "studio.js"

# Runs in the page: the new task is placed with the modeler's own API (dragging from the
# palette is a pointer gesture the test need not re-prove); everything Qorgau-specific about
# it is then typed into the properties panel.
ADD_TASK = """() => {
  const m = window.qorgauModeler;
  const registry = m.get('elementRegistry');
  const modeling = m.get('modeling');
  const legal = registry.get('legal_check');
  const end = registry.get('end_ok');
  modeling.removeConnection(registry.get('f6'));
  modeling.moveShape(legal, { x: -300, y: 0 });
  const bo = m.get('bpmnFactory').create('bpmn:UserTask', {
    id: 'second_check', name: 'Second legal check' });
  const shape = m.get('elementFactory').createShape({ type: 'bpmn:UserTask', businessObject: bo });
  const created = modeling.createShape(shape, { x: 560, y: 300 }, registry.get('Part_test_intake'));
  modeling.connect(registry.get('legal_check'), created);
  modeling.connect(created, end);
  m.get('selection').select(created);
}"""

HAS_PROPERTY = """([id, name, value]) => {
  const bo = window.qorgauModeler.get('elementRegistry').get(id).businessObject;
  const ext = bo.extensionElements;
  const props = ext && ext.values.find((v) => v.$type === 'spiffworkflow:Properties');
  return !!props && props.properties.some((p) => p.name === name && p.value === value);
}"""


@pytest.fixture
def studio_server(web_template, tmp_path, clock):
    if not STUDIO_JS.exists():
        pytest.skip("the studio bundle is not built (make install runs npm run build)")
    target = tmp_path / "qorgau.sqlite3"
    shutil.copy(web_template, target)
    app = web_fixtures.make_app(
        f"sqlite:///{target}", clock, tmp_path, FORMS_DIR=str(ENGINE_DATA / "forms")
    )
    server = make_server("127.0.0.1", _free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()
    server.server_close()
    app.extensions["qorgau.engine"].dispose()


def sign_in(page, base, username):
    page.goto(f"{base}/sign-in")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.locator("form.stack button[type=submit]").click()
    page.wait_for_load_state()


def open_group(page, label):
    header = page.locator(".bio-properties-panel-group-header", has_text=label).first
    if "open" not in (header.get_attribute("class") or "").split():
        header.click()


def panel_field(page, entry_id, value):
    field = page.locator(f"#bio-properties-panel-{entry_id}")
    field.fill(value)
    field.press("Tab")


def test_analyst_edits_validates_deploys_and_admin_dry_runs(studio_server, new_page, clock):
    app, base = studio_server
    sessions = app.extensions["qorgau.sessions"]
    people = web_fixtures.actors_of(sessions)
    # Older cases on version 1: OLD-1 at the specialist's task, OLD-2 and OLD-3 at the
    # lawyer's.
    with unit_of_work(sessions) as s:
        started = {
            key: instances.start_process(
                s, process_key="test_intake", actor=people["aigul"], clock=clock, business_key=key
            )
            for key in ("OLD-1", "OLD-2", "OLD-3")
        }
    for key in ("OLD-2", "OLD-3"):
        with unit_of_work(sessions) as s:
            tasks.complete_task(
                s,
                task_id=started[key].ready_tasks[0].id,
                actor=people["aigul"],
                data=VALID_CHILD,
                clock=clock,
            )
    at_register, at_legal, blocked = started["OLD-1"], started["OLD-2"], started["OLD-3"]

    with unit_of_work(sessions) as s:
        old_version_id = s.get(ProcessInstance, at_register.id).process_version_id
    page = new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, base, "analyst")
    page.goto(f"{base}/studio/")
    process = page.locator("article[data-process=test_intake]")
    process.locator("tr[data-version='1'] button[name=edit]").click()
    page.wait_for_url(re.compile(r".*/studio/drafts/\d+$"))
    studio = page.locator("#bpmn-studio")
    expect(studio).to_have_attribute("data-ready", "true")
    expect(page.locator(".djs-element[data-element-id=legal_check]")).to_be_visible()

    # The lawyer's task gets a new id (General group of the stock panel).
    page.locator(".djs-element[data-element-id=legal_check]").click()
    open_group(page, "General")
    panel_field(page, "id", "legal_review")
    page.wait_for_function(
        "() => !!window.qorgauModeler.get('elementRegistry').get('legal_review')"
    )

    page.evaluate(ADD_TASK.replace("'legal_check'", "'legal_review'"))
    open_group(page, "Qorgau")
    expect(page.locator("#bio-properties-panel-qorgau-role")).to_be_visible()
    panel_field(page, "qorgau-role", "lawyer")
    panel_field(page, "qorgau-formKey", "test/legal")
    # The planted error: a deadline rule that does not exist yet.
    panel_field(page, "qorgau-deadlineRule", "test.second_term")
    panel_field(page, "qorgau-clauses", "15.2")
    page.wait_for_function(HAS_PROPERTY, arg=["second_check", "deadlineRule", "test.second_term"])
    page.wait_for_function(HAS_PROPERTY, arg=["second_check", "clauses", "15.2"])

    page.locator("[data-action=validate]").click()
    problem = page.locator("[data-role=problems] li", has_text="test.second_term")
    expect(problem).to_contain_text("[second_check]")
    marked = page.locator(".djs-element.qorgau-problem[data-element-id=second_check]")
    expect(marked).to_be_visible()
    expect(page.locator(".qorgau-problem-badge[data-element-id=second_check]")).to_have_text("1")

    # The fix: the rule, with its legal basis and effective date, in the rules editor.
    page.fill("#rule-key", "test.second_term")
    page.fill("#rule-basis", "Reg 15.2 (second check)")
    page.fill("#rule-value", "3")
    page.select_option("#rule-unit", "working_days")
    page.fill("#rule-from", "2026-01-01")
    page.locator("form.studio-rule button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/studio/drafts/\d+#rules$"))
    expect(studio).to_have_attribute("data-ready", "true")
    # The modeler reloaded the saved draft, with the new task and its properties.
    page.wait_for_function(HAS_PROPERTY, arg=["second_check", "formKey", "test/legal"])
    page.locator("[data-action=validate]").click()
    expect(page.locator("[data-role=status]")).to_contain_text("Valid")
    expect(page.locator(".djs-element.qorgau-problem")).to_have_count(0)

    page.fill("#deploy-comment", "second legal check (Reg 15.2)")
    page.locator("[data-action=deploy]").click()
    page.wait_for_url(re.compile(r".*/studio/$"))
    expect(page.locator(".flash-info")).to_contain_text("test_intake v2")
    row = page.locator("article[data-process=test_intake] tr[data-version='2']")
    expect(row).to_contain_text("analyst")
    expect(row).to_contain_text("second legal check")

    # A specialist starts a case: it runs on version 2; the older cases stay on version 1.
    specialist = new_page()
    sign_in(specialist, base, "aigul")
    specialist.goto(f"{base}/start")
    specialist.get_by_role("link", name="Test intake").click()
    specialist.fill("#business_key", "NEW-1")
    specialist.locator("form button[type=submit].primary").click()
    specialist.wait_for_url(re.compile(r".*/tasks/\d+$"))
    with unit_of_work(sessions) as s:
        versions = dict(
            s.execute(
                select(ProcessInstance.business_key, ProcessVersion.version).join(
                    ProcessVersion, ProcessVersion.id == ProcessInstance.process_version_id
                )
            ).all()
        )
    assert versions == {"OLD-1": 1, "OLD-2": 1, "OLD-3": 1, "NEW-1": 2}
    # The older case continues on version 1: its lawyer's task is still "legal_check".
    with unit_of_work(sessions) as s:
        old = instances.get_instance(s, instance_id=at_legal.id)
        assert [t.bpmn_id for t in old.ready_tasks] == ["legal_check"]
        tasks.complete_task(
            s,
            task_id=old.ready_tasks[0].id,
            actor=people["maria"],
            data={"opinion": "approve"},
            clock=clock,
        )
    with unit_of_work(sessions) as s:
        assert instances.get_instance(s, instance_id=at_legal.id).status == "completed"

    # The administrator's dry run: OLD-1 could move, OLD-3 is blocked (its task is gone).
    admin = new_page()
    sign_in(admin, base, "admin")
    admin.goto(f"{base}/studio/migrate/test_intake")
    admin.select_option("#target", label="v2")
    admin.check(f"#case-{at_register.id}")
    admin.check(f"#case-{blocked.id}")
    admin.locator("button[value=dry-run]").click()
    result = admin.locator("[data-result=dry-run]")
    expect(result.locator("[data-list=moved]")).to_contain_text("OLD-1")
    expect(result.locator("[data-list=blocked]")).to_contain_text("OLD-3")
    expect(result.locator("[data-list=blocked]")).to_contain_text("legal_check")
    with unit_of_work(sessions) as s:
        assert s.get(ProcessInstance, at_register.id).process_version_id == old_version_id
    assert errors == []


def test_decision_table_editor_opens_under_the_csp(studio_server, new_page, clock):
    from engine import studio

    app, base = studio_server
    sessions = app.extensions["qorgau.sessions"]
    people = web_fixtures.actors_of(sessions)
    table = (ENGINE_DATA.parents[2] / "bpmn" / "guardianship_eligibility.dmn").read_text(
        encoding="utf-8"
    )
    with unit_of_work(sessions) as s:
        version = s.scalar(
            select(ProcessVersion.id).where(ProcessVersion.process_key == "test_intake")
        )
        draft = studio.draft_from_version(
            s, version_id=version, actor=people["analyst"], now=clock.now()
        )
        studio.save_draft(
            s,
            draft_id=draft.id,
            actor=people["analyst"],
            now=clock.now(),
            dmn_files={"eligibility.dmn": table},
        )
    page = new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, base, "analyst")
    page.goto(f"{base}/studio/drafts/{draft.id}/dmn/eligibility.dmn")
    expect(page.locator("[data-studio=dmn]")).to_have_attribute("data-ready", "true")
    expect(page.locator(".tjs-table, .djs-container").first).to_be_visible()
    page.locator("[data-action=save]").click()
    expect(page.locator("[data-role=status]")).to_contain_text("Saved")
    assert errors == []
