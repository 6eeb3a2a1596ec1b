"""The studio through the Flask client: who reaches it, hostile uploads, the modeler's JSON
calls, deploy, diff and migration pages."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from engine import instances
from engine.db import unit_of_work
from engine.models import ProcessVersion
from engine.models.studio import StudioDraft
from tests.factories import ENGINE_DATA
from tests.web.conftest import ROLE_USERS, make_app

HOSTILE = ENGINE_DATA.parent / "bpmn" / "hostile"
INTAKE = (ENGINE_DATA / "test_intake.bpmn").read_text(encoding="utf-8")


@pytest.fixture
def app(web_url, clock, tmp_path):
    # The studio resolves forms not kept in a draft from the test processes' forms folder.
    app = make_app(web_url, clock, tmp_path, FORMS_DIR=str(ENGINE_DATA / "forms"))
    yield app
    app.extensions["qorgau.engine"].dispose()


def version_id(sessions, key="test_intake", version=1):
    with unit_of_work(sessions) as s:
        return s.scalar(
            select(ProcessVersion.id).where(
                ProcessVersion.process_key == key, ProcessVersion.version == version
            )
        )


def drafts(sessions):
    with unit_of_work(sessions) as s:
        return s.scalar(select(func.count()).select_from(StudioDraft))


@pytest.mark.parametrize("role", sorted(ROLE_USERS))
def test_only_analysts_and_admins_reach_the_studio(world, signed_in, sessions, role):
    b = signed_in(ROLE_USERS[role])
    library = b.get("/studio/")
    assert library.status_code == (200 if role in ("analyst", "admin") else 403)
    edit = b.post(f"/studio/versions/{version_id(sessions)}/edit")
    assert edit.status_code == (302 if role == "analyst" else 403)
    migrate = b.get("/studio/migrate/test_intake")
    assert migrate.status_code == (200 if role == "admin" else 403)


def test_anonymous_goes_to_sign_in(world, browser):
    assert browser.get("/studio/").status_code == 302


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("xxe_file.bpmn", (HOSTILE / "xxe_file.bpmn").read_bytes(), "DOCTYPE"),
        ("billion_laughs.bpmn", (HOSTILE / "billion_laughs.bpmn").read_bytes(), "DOCTYPE"),
        (
            "escape.bpmn",
            INTAKE.replace("years = int(child_age)", "x = __import__('os').system('id')").encode(),
            "refused by the sandbox",
        ),
    ],
)
def test_a_hostile_upload_is_refused_with_a_message_and_nothing_stored(
    world, signed_in, sessions, name, content, fragment
):
    b = signed_in("analyst")
    b.get("/studio/")
    response = b.post(
        "/studio/import",
        {"file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    page = b.get("/studio/").get_data(as_text=True)
    assert "Қабылданбады" in page and fragment in page  # "Refused": the analyst reads Kazakh
    assert drafts(sessions) == 0


def test_post_without_csrf_token_is_refused(world, signed_in, sessions):
    b = signed_in("analyst")
    response = b.post(f"/studio/versions/{version_id(sessions)}/edit", csrf=False)
    assert response.status_code == 400
    assert drafts(sessions) == 0


def test_modeler_save_validate_deploy_diff_and_migration(world, signed_in, sessions, clock):
    b = signed_in("analyst")
    b.get("/studio/")
    edit = b.post(f"/studio/versions/{version_id(sessions)}/edit")
    draft_url = edit.headers["Location"]
    page = b.get(draft_url)
    assert page.status_code == 200 and 'data-studio="bpmn"' in page.get_data(as_text=True)
    content = b.get(draft_url + "/content").get_json()
    assert content["bpmn_xml"] == INTAKE and content["lacks"] == []

    headers = {"X-CSRF-Token": b.token}
    # A planted error: the lawyer's task names a form that does not exist.
    broken = INTAKE.replace('value="test/legal"', 'value="test/nope"')
    saved = b.client.post(
        draft_url + "/save",
        json={"bpmn_xml": broken, "revision": content["revision"]},
        headers=headers,
    )
    assert saved.status_code == 200
    problems = b.client.post(draft_url + "/validate", json={}, headers=headers).get_json()
    [problem] = problems["problems"]
    assert problem["element_id"] == "legal_check" and "test/nope" in problem["message"]
    # A stale revision is refused: someone else saved in between.
    stale = b.client.post(
        draft_url + "/save",
        json={"bpmn_xml": broken, "revision": content["revision"]},
        headers=headers,
    )
    assert stale.status_code == 409
    # Code that escapes the sandbox is never saved.
    hostile = b.client.post(
        draft_url + "/save",
        json={"bpmn_xml": INTAKE.replace("years = int(child_age)", "import os")},
        headers=headers,
    )
    assert hostile.status_code == 422
    assert hostile.get_json()["problems"][0]["element_id"] == "score"
    # Without the header the JSON call is refused too.
    assert b.client.post(draft_url + "/validate", json={}).status_code == 400

    fixed = INTAKE.replace(
        'value="test/legal"',
        'value="test/legal" /><spiffworkflow:property name="clauses" value="15.2"',
    )
    saved = b.client.post(draft_url + "/save", json={"bpmn_xml": fixed}, headers=headers)
    assert saved.get_json()["lacks"] == []

    # Deploy; a specialist's new case takes version 2, an older one stays on version 1.
    with unit_of_work(sessions) as s:
        old = instances.start_process(
            s, process_key="test_intake", actor=world["aigul"], clock=clock
        )
    deployed = b.post(draft_url + "/deploy", {"comment": "clauses of the legal check"})
    assert deployed.status_code == 302
    library = b.get("/studio/").get_data(as_text=True)
    assert "Жарияланды: test_intake v2" in library and "clauses of the legal check" in library
    with unit_of_work(sessions) as s:
        new = instances.start_process(
            s, process_key="test_intake", actor=world["aigul"], clock=clock
        )
        assert (old.version, new.version) == (1, 2)

    diff = b.get(
        f"/studio/diff?from={version_id(sessions)}&to={version_id(sessions, version=2)}"
    ).get_data(as_text=True)
    assert "legal_check" in diff and "property clauses" in diff

    # The administrator's dry run: the old case is movable (it waits at "register").
    admin = signed_in("admin")
    admin.get("/studio/migrate/test_intake")
    dry = admin.post(
        "/studio/migrate/test_intake",
        {
            "instance_id": str(old.id),
            "target": str(version_id(sessions, version=2)),
            "action": "dry-run",
        },
    )
    text = dry.get_data(as_text=True)
    assert dry.status_code == 200 and "Алдын ала тексеру: ештеңе өзгертілмеді" in text
    assert f"#{old.id}" in text.split('data-list="moved"')[1].split("</ul>")[0]


def test_forms_editor_checks_the_schema_and_previews_with_inbox_fields(world, signed_in, sessions):
    b = signed_in("analyst")
    b.get("/studio/")
    draft_url = b.post(f"/studio/versions/{version_id(sessions)}/edit").headers["Location"]
    draft_id = int(draft_url.rstrip("/").split("/")[-1])
    page = b.get(f"/studio/drafts/{draft_id}/form?key=test/legal").get_data(as_text=True)
    assert 'id="f-opinion"' in page and "disabled" in page  # the inbox's field, read-only
    bad = b.post(
        f"/studio/drafts/{draft_id}/form",
        {"key": "test/new", "schema": '{"type": "object", "properties": {"a": {"type": 5}}}'},
    )
    assert bad.status_code == 422 and "not valid" in bad.get_data(as_text=True)
    good = b.post(
        f"/studio/drafts/{draft_id}/form",
        {
            "key": "test/new",
            "schema": '{"type": "object", "properties": {"note": {"type": "string"}},'
            ' "x-i18n": {"en": {"properties": {"note": {"title": "Note"}}}}}',
        },
    )
    assert good.status_code == 302
    preview = b.client.post(
        "/studio/preview",
        json={"schema": '{"type": "object", "properties": {"age": {"type": "integer"}}}'},
        headers={"X-CSRF-Token": b.token},
    ).get_json()
    assert 'id="f-age"' in preview["html"] and preview["errors"] == []
    with unit_of_work(sessions) as s:
        assert "test/new" in s.get(StudioDraft, draft_id).forms


def test_rules_editor_adds_a_rule_with_basis_and_dates(world, signed_in, sessions):
    b = signed_in("analyst")
    b.get("/studio/")
    draft_url = b.post(f"/studio/versions/{version_id(sessions)}/edit").headers["Location"]
    b.get(draft_url)
    response = b.post(
        draft_url + "/rules",
        {
            "key": "test.new_term",
            "basis": "Reg 15.3",
            "value": "5",
            "unit": "calendar_days",
            "effective_from": "2026-01-01",
            "effective_to": "",
        },
    )
    assert response.status_code == 302
    page = b.get(draft_url).get_data(as_text=True)
    assert "test.new_term" in page and "2026-01-01" in page
    refused = b.post(draft_url + "/rules", {"key": "x", "basis": "", "value": "-1", "unit": "x"})
    assert refused.status_code == 303
    assert "Ереже сақталмады" in b.get(draft_url).get_data(as_text=True)  # "Rule not saved"


def test_decision_table_page_and_save(world, signed_in, sessions, clock):
    from engine import studio

    table = (ENGINE_DATA.parents[2] / "bpmn" / "guardianship_eligibility.dmn").read_text(
        encoding="utf-8"
    )
    with unit_of_work(sessions) as s:
        draft = studio.draft_from_version(
            s, version_id=version_id(sessions), actor=world["analyst"], now=clock.now()
        )
        studio.save_draft(
            s,
            draft_id=draft.id,
            actor=world["analyst"],
            now=clock.now(),
            dmn_files={"eligibility.dmn": table},
        )
    b = signed_in("analyst")
    page = b.get(f"/studio/drafts/{draft.id}/dmn/eligibility.dmn")
    assert page.status_code == 200 and 'data-studio="dmn"' in page.get_data(as_text=True)
    url = f"/studio/drafts/{draft.id}/dmn/eligibility.dmn"
    assert b.get(url + "/content").get_json()["dmn_xml"] == table
    changed = table.replace("Guardianship eligibility", "Guardianship eligibility (2026)")
    saved = b.client.post(
        url + "/save", json={"dmn_xml": changed}, headers={"X-CSRF-Token": b.token}
    )
    assert saved.status_code == 200
    assert b.get(url + "/content").get_json()["dmn_xml"] == changed
    assert b.get(f"/studio/drafts/{draft.id}/dmn/other.dmn").status_code == 404
