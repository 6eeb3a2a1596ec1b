"""The administrator's users page and the studio's version diff name roles and BPMN element
kinds in the reader's language, keeping the stored code at hand in a title attribute."""

from __future__ import annotations

import re
import shutil

from sqlalchemy import select

from engine.db import unit_of_work
from engine.models import ProcessVersion
from tests.factories import ENGINE_DATA, deploy_dir


def _in(browser, lang: str, page: str) -> str:
    assert browser.post("/language", {"lang": lang, "next": page}).status_code == 302
    response = browser.get(page)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def _in_russian(browser, page: str) -> str:
    return _in(browser, "ru", page)


def _redeploy_test_intake(sessions, clock, tmp_path, *replacements: tuple[str, str]) -> None:
    """Deploy a new version of the test process, its BPMN text edited by ``replacements``."""
    folder = tmp_path / "engine"
    shutil.copytree(ENGINE_DATA, folder)
    bpmn = folder / "test_intake.bpmn"
    text = bpmn.read_text(encoding="utf-8")
    for old, new in replacements:
        text = text.replace(old, new)
    bpmn.write_text(text, encoding="utf-8")
    deploy_dir(sessions, clock, folder, "test_intake.bpmn")


def _row(page: str, username: str) -> str:
    found = re.search(rf"<tr><td><a [^>]*>{username}</a>.*?</tr>", page)
    assert found, page
    return found.group(0)


def test_the_users_page_names_roles_districts_and_languages_in_russian(world, signed_in):
    admin = signed_in("admin")
    page = _in_russian(admin, "/admin/users")
    aigul = _row(page, "aigul")
    assert '<td title="specialist">Специалист</td>' in aigul
    assert '<td title="kostanay_city">' in aigul and ">kostanay_city<" not in aigul
    assert '<td title="deputy_head">Заместитель руководителя</td>' in _row(page, "deputy")
    assert '<td title="admin">Администратор</td>' in _row(page, "admin")
    assert '<td title="ru">Русский</td>' in _row(page, "admin")


def test_the_version_diff_names_element_kinds_and_fields_in_russian(
    world, signed_in, sessions, clock, tmp_path
):
    _redeploy_test_intake(
        sessions,
        clock,
        tmp_path,
        ('name="Register the child"', 'name="Register the child and family"'),
        (
            'value="test/legal"',
            'value="test/legal" /><spiffworkflow:property name="clauses" value="15.2"',
        ),
        (
            "  </bpmn:process>",
            '    <bpmn:textAnnotation id="note"><bpmn:text>Reg 15.2</bpmn:text>'
            "</bpmn:textAnnotation>\n  </bpmn:process>",
        ),
    )
    with unit_of_work(sessions) as s:
        ids = dict(
            s.execute(
                select(ProcessVersion.version, ProcessVersion.id).where(
                    ProcessVersion.process_key == "test_intake"
                )
            ).all()
        )

    analyst = signed_in("analyst")
    page = _in_russian(analyst, f"/studio/diff?from={ids[1]}&to={ids[2]}")
    assert '<td title="textAnnotation">текстовая аннотация</td>' in page
    assert '<td title="userTask">пользовательская задача</td>' in page
    assert '<strong title="name">название элемента</strong>' in page
    assert '<strong title="property clauses">свойство Qorgau clauses</strong>' in page
    assert ">userTask<" not in page and ">textAnnotation<" not in page


def test_procedures_and_tasks_are_named_in_the_readers_language(
    world, signed_in, sessions, clock, tmp_path
):
    # A new version of the test process names itself and its first task in Kazakh and
    # Russian; English readers keep the BPMN names.
    _redeploy_test_intake(
        sessions,
        clock,
        tmp_path,
        (
            '<spiffworkflow:property name="formKey" value="test/register" />',
            '<spiffworkflow:property name="name.kk" value="Баланы тіркеу" />'
            '<spiffworkflow:property name="name.ru" value="Зарегистрировать ребёнка" />'
            '<spiffworkflow:property name="formKey" value="test/register" />',
        ),
        (
            '<bpmn:laneSet id="LaneSet_test_intake">',
            "<bpmn:extensionElements><spiffworkflow:properties>"
            '<spiffworkflow:property name="name.kk" value="Сынақ қабылдау" />'
            '<spiffworkflow:property name="name.ru" value="Тестовый приём" />'
            "</spiffworkflow:properties></bpmn:extensionElements>\n"
            '    <bpmn:laneSet id="LaneSet_test_intake">',
        ),
    )
    aigul = signed_in("aigul")
    response = aigul.post("/start/test_intake", {"business_key": "KST-9"})
    task_page = response.headers["Location"]

    inbox = _in(aigul, "ru", "/inbox")
    assert "Зарегистрировать ребёнка" in inbox and "Тестовый приём" in inbox
    assert "Register the child" not in inbox
    assert "Тестовый приём" in _in(aigul, "ru", task_page)
    inbox = _in(aigul, "kk", "/inbox")
    assert "Баланы тіркеу" in inbox and "Сынақ қабылдау" in inbox
    inbox = _in(aigul, "en", "/inbox")
    assert "Register the child" in inbox and "Test intake" in inbox
    assert "Сынақ қабылдау" in _in(aigul, "kk", "/start")
