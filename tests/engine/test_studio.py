"""The studio's engine side: drafts from versions and uploads, hostile uploads, forms and
rules editing, validate and deploy, the library and version diffs."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from engine import instances, library, studio
from engine.db import unit_of_work
from engine.errors import DeployError, Forbidden, ValidationFailed
from engine.models import AuditEvent, ProcessVersion
from engine.models.studio import StudioDraft
from tests.factories import ENGINE_DATA, deploy_dir, make_people

FORMS = ENGINE_DATA / "forms"
INTAKE = (ENGINE_DATA / "test_intake.bpmn").read_text(encoding="utf-8")
DOUBLE_CHECK = """
    <bpmn:userTask id="double_check" name="Second legal check">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formKey" value="test/second" />
        <spiffworkflow:property name="deadlineRule" value="test.second_term" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f6</bpmn:incoming>
      <bpmn:outgoing>f7</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f7" sourceRef="double_check" targetRef="end_ok" />
"""
SECOND_FORM = {
    "type": "object",
    "required": ["agree"],
    "properties": {"agree": {"type": "boolean"}},
    "x-i18n": {"kk": {"title": "Екінші тексеру"}, "ru": {"title": "Вторая проверка"}},
}


def with_double_check(xml: str) -> str:
    """Version 2 of the intake: a second legal check before the end (lawyer's lane)."""
    xml = xml.replace(
        '<bpmn:sequenceFlow id="f6" sourceRef="legal_check" targetRef="end_ok" />',
        '<bpmn:sequenceFlow id="f6" sourceRef="legal_check" targetRef="double_check" />'
        + DOUBLE_CHECK,
    )
    xml = xml.replace(
        "<bpmn:flowNodeRef>end_ok</bpmn:flowNodeRef>",
        "<bpmn:flowNodeRef>end_ok</bpmn:flowNodeRef><bpmn:flowNodeRef>double_check"
        "</bpmn:flowNodeRef>",
    )
    return xml.replace(
        "<bpmn:incoming>f6</bpmn:incoming>\n    </bpmn:endEvent>",
        "<bpmn:incoming>f7</bpmn:incoming>\n    </bpmn:endEvent>",
    )


@pytest.fixture
def world(sessions, clock):
    people = make_people(sessions, clock)
    [v1] = deploy_dir(sessions, clock, ENGINE_DATA, "test_intake.bpmn")
    return people, v1


def test_a_draft_from_a_version_holds_its_files_forms_and_rules(world, sessions, clock):
    people, v1 = world
    with unit_of_work(sessions) as s:
        draft = studio.draft_from_version(
            s, version_id=v1.id, actor=people["analyst"], now=clock.now(), forms_dir=FORMS
        )
    assert draft.process_key == "test_intake" and draft.base_version_id == v1.id
    assert draft.bpmn_name == "test_intake.bpmn" and draft.bpmn_xml == INTAKE
    assert set(draft.forms) == {"test/register", "test/legal"}
    assert "test.register_term" in draft.rules_yaml and "Reg 15.2" in draft.rules_yaml
    assert draft.lacks == () and draft.executable
    # Nothing to deploy while it equals the version it came from.
    with unit_of_work(sessions) as s, pytest.raises(ValidationFailed, match="nothing changed"):
        studio.deploy_draft(s, draft_id=draft.id, actor=people["analyst"], now=clock.now())


def test_edit_validate_deploy_and_diff(world, sessions, clock):
    people, v1 = world
    analyst = people["analyst"]
    with unit_of_work(sessions) as s:
        draft = studio.draft_from_version(
            s, version_id=v1.id, actor=analyst, now=clock.now(), forms_dir=FORMS
        )
        # The new task names a form and a rule that do not exist yet: the draft lacks them.
        draft = studio.save_draft(
            s,
            draft_id=draft.id,
            actor=analyst,
            now=clock.now(),
            bpmn_xml=with_double_check(INTAKE),
            forms_dir=FORMS,
        )
    lacking = {(p.element_id, p.message) for p in draft.lacks}
    assert ("double_check", "form 'test/second' not found (test/second.json)") in lacking
    assert any(e == "double_check" and "test.second_term" in m for e, m in lacking)
    with unit_of_work(sessions) as s, pytest.raises(DeployError):
        studio.deploy_draft(s, draft_id=draft.id, actor=analyst, now=clock.now(), forms_dir=FORMS)

    with unit_of_work(sessions) as s:
        studio.put_form(
            s,
            draft_id=draft.id,
            key="test/second",
            schema_text=json.dumps(SECOND_FORM),
            actor=analyst,
            now=clock.now(),
            forms_dir=FORMS,
        )
        draft = studio.put_rule(
            s,
            draft_id=draft.id,
            key="test.second_term",
            basis="Reg 15.2 (second check)",
            value=3,
            unit="working_days",
            effective_from=None,
            effective_to=None,
            actor=analyst,
            now=clock.now(),
            forms_dir=FORMS,
        )
        assert studio.validate_draft(s, draft_id=draft.id, actor=analyst, forms_dir=FORMS) == []
    with unit_of_work(sessions) as s:
        [v2] = studio.deploy_draft(
            s, draft_id=draft.id, actor=analyst, now=clock.now(), comment="second check"
        )
    assert (v2.process_key, v2.version) == ("test_intake", 2)
    with unit_of_work(sessions) as s:
        assert studio.get_draft(s, draft_id=draft.id).status == "deployed"
        deployed = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "definitions.deployed")
        ).all()
        assert (
            deployed[-1].actor == "analyst" and "test_intake@2" in deployed[-1].detail["versions"]
        )

        diff = library.version_diff(s, from_version_id=v1.id, to_version_id=v2.id)
    assert {(c.element_id, c.kind) for c in diff.added} == {
        ("double_check", "userTask"),
        ("f7", "sequenceFlow"),
    }
    assert diff.removed == ()
    changed = {c.element_id: c.fields for c in diff.changed}
    assert changed["f6"] == {"targetRef": ("end_ok", "double_check")}
    assert diff.forms_added == ("test/second",) and diff.rules_added == ("test.second_term",)
    assert diff.forms_changed == () and diff.rules_changed == ()
    added = next(c for c in diff.added if c.element_id == "double_check")
    assert added.name == "Second legal check"


def test_a_rule_gets_a_new_period_when_the_law_changes(world, sessions, clock):
    from datetime import date

    people, v1 = world
    with unit_of_work(sessions) as s:
        draft = studio.draft_from_version(
            s, version_id=v1.id, actor=people["analyst"], now=clock.now(), forms_dir=FORMS
        )
        draft = studio.put_rule(
            s,
            draft_id=draft.id,
            key="test.register_term",
            basis="Reg 15.2 as amended",
            value=2,
            unit="working_days",
            effective_from=date(2026, 7, 1),
            effective_to=None,
            actor=people["analyst"],
            now=clock.now(),
        )
        with pytest.raises(ValidationFailed, match="not valid"):
            studio.put_rule(
                s,
                draft_id=draft.id,
                key="test.bad",
                basis="",
                value=2,
                unit="fortnights",
                effective_from=None,
                effective_to=None,
                actor=people["analyst"],
                now=clock.now(),
            )
        [v2] = studio.deploy_draft(s, draft_id=draft.id, actor=people["analyst"], now=clock.now())
        diff = library.version_diff(s, from_version_id=v1.id, to_version_id=v2.id)
        pinned = s.get(ProcessVersion, v2.id).deadline_rules["test.register_term"]
    assert diff.rules_changed == ("test.register_term",) and diff.added == ()
    assert [r.get("effective_from") for r in pinned] == [None, "2026-07-01"]


def test_form_schema_is_checked_before_it_is_kept(world, sessions, clock):
    people, v1 = world
    with unit_of_work(sessions) as s:
        draft = studio.draft_from_version(
            s, version_id=v1.id, actor=people["analyst"], now=clock.now(), forms_dir=FORMS
        )
        for text, fragment in [
            ("{not json", "not valid JSON"),
            ('{"type": "object", "properties": {"a": {"type": "nonsense"}}}', "not valid"),
            ('{"type": "array"}', "not valid"),
        ]:
            with pytest.raises(ValidationFailed, match=fragment):
                studio.put_form(
                    s,
                    draft_id=draft.id,
                    key="test/x",
                    schema_text=text,
                    actor=people["analyst"],
                    now=clock.now(),
                )
        with pytest.raises(ValidationFailed, match="form key"):
            studio.put_form(
                s,
                draft_id=draft.id,
                key="../escape",
                schema_text=json.dumps(SECOND_FORM),
                actor=people["analyst"],
                now=clock.now(),
            )
        assert "test/x" not in studio.get_draft(s, draft_id=draft.id).forms


def test_a_diagram_not_executable_yet_is_kept_with_what_it_lacks(world, sessions, clock):
    people, _v1 = world
    drawn = INTAKE.replace('isExecutable="true"', 'isExecutable="false"').replace(
        "test_intake", "drawn_elsewhere"
    )
    with unit_of_work(sessions) as s:
        draft = studio.import_draft(
            s,
            file_name="drawn.bpmn",
            content=drawn.encode("utf-8"),
            actor=people["analyst"],
            now=clock.now(),
        )
    assert draft.process_key == "drawn_elsewhere" and not draft.executable
    assert any("executable" in p.message for p in draft.lacks)
    with unit_of_work(sessions) as s:
        assert [d.id for d in studio.list_drafts(s)] == [draft.id]


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        (
            "xxe.bpmn",
            (ENGINE_DATA.parent / "bpmn" / "hostile" / "xxe_file.bpmn").read_bytes(),
            "DOCTYPE",
        ),
        (
            "laughs.bpmn",
            (ENGINE_DATA.parent / "bpmn" / "hostile" / "billion_laughs.bpmn").read_bytes(),
            "DOCTYPE",
        ),
        (
            "escape.bpmn",
            INTAKE.replace(
                "years = int(child_age)", "years = ().__class__.__base__.__subclasses__()"
            )
            # Not executable: deploy would skip it, the studio must still refuse to keep it.
            .replace('isExecutable="true"', 'isExecutable="false"')
            .encode("utf-8"),
            "refused by the sandbox",
        ),
    ],
)
def test_a_hostile_upload_is_refused_and_nothing_stored(
    world, sessions, clock, name, content, fragment
):
    people, _v1 = world
    with unit_of_work(sessions) as s, pytest.raises(DeployError) as caught:
        studio.import_draft(
            s, file_name=name, content=content, actor=people["analyst"], now=clock.now()
        )
    assert fragment in str(caught.value)
    with unit_of_work(sessions) as s:
        assert s.scalar(select(func.count()).select_from(StudioDraft)) == 0


def test_saving_code_that_escapes_the_sandbox_is_refused(world, sessions, clock):
    people, v1 = world
    with unit_of_work(sessions) as s:
        draft = studio.draft_from_version(
            s, version_id=v1.id, actor=people["analyst"], now=clock.now(), forms_dir=FORMS
        )
    with unit_of_work(sessions) as s, pytest.raises(DeployError, match="score"):
        studio.save_draft(
            s,
            draft_id=draft.id,
            actor=people["analyst"],
            now=clock.now(),
            bpmn_xml=INTAKE.replace("years = int(child_age)", "import os"),
        )
    with unit_of_work(sessions) as s:
        assert studio.get_draft(s, draft_id=draft.id).bpmn_xml == INTAKE


def test_only_analysts_edit(world, sessions, clock):
    people, v1 = world
    for who in ("aigul", "admin", "head"):
        with unit_of_work(sessions) as s, pytest.raises(Forbidden):
            studio.draft_from_version(s, version_id=v1.id, actor=people[who], now=clock.now())


def test_library_lists_versions_with_who_when_and_cases(world, sessions, clock):
    people, v1 = world
    with unit_of_work(sessions) as s:
        instances.start_process(s, process_key="test_intake", actor=people["aigul"], clock=clock)
        instances.start_process(s, process_key="test_intake", actor=people["aigul"], clock=clock)
    with unit_of_work(sessions) as s:
        [entry] = library.list_library(s)
    assert entry.process_key == "test_intake"
    [version] = entry.versions
    assert (version.id, version.version, version.live_cases, version.all_cases) == (v1.id, 1, 2, 2)
    assert version.deployed_at == clock.now()


def test_decision_tables_are_kept_and_hostile_ones_refused(world, sessions, clock):
    people, v1 = world
    table = (ENGINE_DATA.parents[2] / "bpmn" / "guardianship_eligibility.dmn").read_text(
        encoding="utf-8"
    )
    with unit_of_work(sessions) as s:
        draft = studio.draft_from_version(
            s, version_id=v1.id, actor=people["analyst"], now=clock.now(), forms_dir=FORMS
        )
        draft = studio.save_draft(
            s,
            draft_id=draft.id,
            actor=people["analyst"],
            now=clock.now(),
            dmn_files={"eligibility.dmn": table},
            forms_dir=FORMS,
        )
        assert draft.dmn_files == {"eligibility.dmn": table}
        # The table parses with the draft (an unused decision is no problem).
        assert draft.lacks == ()
        laughs = (ENGINE_DATA.parent / "bpmn" / "hostile" / "billion_laughs.bpmn").read_text()
        with pytest.raises(DeployError, match="DOCTYPE"):
            studio.save_draft(
                s,
                draft_id=draft.id,
                actor=people["analyst"],
                now=clock.now(),
                dmn_files={"eligibility.dmn": laughs},
            )
        with pytest.raises(ValidationFailed, match="file name"):
            studio.save_draft(
                s,
                draft_id=draft.id,
                actor=people["analyst"],
                now=clock.now(),
                dmn_files={"../x.dmn": table},
            )
