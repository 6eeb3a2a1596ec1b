"""Every procedure and every user task of bpmn/ has a Kazakh and a Russian name, and the
engine reads them from the deployed versions."""

from __future__ import annotations

import re

import pytest
from lxml import etree

from engine import procedures
from engine.config import BPMN_DIR
from engine.db import unit_of_work
from tests.procedures.care_support import CareWorld

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
}
CYRILLIC = re.compile(r"[А-Яа-яЁёӘәҒғҚқҢңӨөҰұҮүҺһІі]")
PATH = "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property"


def _named_elements():
    for path in sorted(BPMN_DIR.glob("*.bpmn")):
        tree = etree.parse(str(path))
        for element in tree.iterfind(".//bpmn:process", NS):
            yield path.name, element
        for element in tree.iterfind(".//bpmn:userTask", NS):
            yield path.name, element


@pytest.mark.parametrize(
    ("file", "element"),
    [pytest.param(f, e, id=f"{f}:{e.get('id')}") for f, e in _named_elements()],
)
def test_every_procedure_and_user_task_is_named_in_kazakh_and_russian(file, element):
    names = {p.get("name"): p.get("value") for p in element.iterfind(PATH, NS)}
    for lang in ("name.kk", "name.ru"):
        assert CYRILLIC.search(names.get(lang) or ""), f"{file}: {element.get('id')} {lang}"
    assert names["name.kk"] != names["name.ru"]


def test_the_engine_reads_the_names_of_the_deployed_versions(sqlite_sessions, clock):
    CareWorld.create(sqlite_sessions, clock)
    with unit_of_work(sqlite_sessions) as session:
        found = procedures.names(session)
    key = "guardianship_appointment"
    assert found.process(key, "ru") == "Установление опеки (попечительства)"
    assert found.process(key, "en") == "Guardianship or custody appointment"
    assert found.task(key, "check_completeness", "kk", "?") == "Құжаттарды тексеру"
    assert found.task(key, "no_such_task", "kk", "as stored") == "as stored"
    assert found.process("no_such_process", "kk") == "no_such_process"
