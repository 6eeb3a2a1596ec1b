"""Stored code values (statuses, people's and staff roles, deadline units, BPMN element
kinds) reach the page in the reader's language, and follow a change of language."""

from __future__ import annotations

import re
from pathlib import Path

import SpiffWorkflow
from lxml import etree
from sqlalchemy import select

from engine import cases, library
from engine.calendar import UNITS
from engine.cases import PERSON_ROLES
from engine.db import unit_of_work
from engine.identity import ROLES, actor_for, get_user
from engine.models import Role
from web.labels import LABELS, label

# The BPMN 2.0 schema, as SpiffWorkflow's parser ships it.
SEMANTIC_XSD = "bpmn/parser/schema/Semantic.xsd"


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


def _bpmn_kinds_inside_a_process() -> set[str]:
    """Every element the BPMN 2.0 schema allows at any depth inside ``<process>`` that may
    carry an id: what ``engine.library.version_diff`` reports as an element's kind.

    Read from the schema SpiffWorkflow ships, following element references, substitution
    groups and base types, so that a kind no diagram of ours uses yet is covered too.
    """
    xs = "{http://www.w3.org/2001/XMLSchema}"
    schema = etree.parse(str(Path(SpiffWorkflow.__file__).parent / SEMANTIC_XSD)).getroot()
    types = {t.get("name"): t for t in schema.iter(f"{xs}complexType") if t.get("name")}
    elements = {e.get("name"): e for e in schema if e.tag == f"{xs}element"}
    members: dict[str, list[str]] = {}
    for name, element in elements.items():
        if element.get("substitutionGroup"):
            members.setdefault(element.get("substitutionGroup"), []).append(name)

    def local(qname: str | None) -> str:
        return (qname or "").rpartition(":")[2]

    def lineage(type_name: str) -> list[etree._Element]:
        found = []
        node = types.get(type_name)
        while node is not None:
            found.append(node)
            extension = node.find(f".//{xs}extension")
            node = None if extension is None else types.get(local(extension.get("base")))
        return found

    def substitutes(name: str) -> set[str]:
        names, todo = {name}, [name]
        while todo:
            for member in members.get(todo.pop(), []):
                if member not in names:
                    names.add(member)
                    todo.append(member)
        return names

    kinds: set[str] = set()
    seen: set[str] = set()
    todo = ["process"]
    while todo:
        for node in lineage(local(elements[todo.pop()].get("type"))):
            for child in node.iter(f"{xs}element"):
                if child.get("name"):
                    elements.setdefault(child.get("name"), child)
                for name in substitutes(local(child.get("ref")) or child.get("name")):
                    type_name = local(elements[name].get("type"))
                    if types.get(type_name) is None or name in seen:
                        continue
                    seen.add(name)
                    todo.append(name)
                    concrete = types[type_name].get("abstract") != "true"
                    with_id = any(
                        a.get("name") == "id"
                        for t in lineage(type_name)
                        for a in t.iter(f"{xs}attribute")
                    )
                    if concrete and with_id:
                        kinds.add(name)
    return kinds


def test_every_element_kind_and_field_of_a_version_diff_has_a_name(app):
    kinds = _bpmn_kinds_inside_a_process()
    # The walk finds what the Department's diagrams use, and the rarer parts of the standard.
    assert {"userTask", "exclusiveGateway", "sequenceFlow", "lane", "timerEventDefinition"} <= kinds
    assert {"complexBehaviorDefinition", "dataInputAssociation"} <= kinds
    assert "process" not in kinds and "flowElement" not in kinds  # itself; abstract
    assert set(LABELS["bpmn_element"]) == kinds
    fields = {etree.QName(tag).localname for tag in library.SCRIPT_TAGS | library.EXPRESSION_TAGS}
    fields |= {"type", "name", "lane", "sourceRef", "targetRef", "attachedToRef"}
    fields |= {"calledElement", "default"}
    assert set(LABELS["diff_field"]) == fields
    with app.test_request_context():
        from flask import g

        g.lang = "ru"
        assert label("exclusiveGateway", "bpmn_element") == "исключающий шлюз"
        assert label("sourceRef", "diff_field") == "начало потока"


def test_every_staff_role_is_named_as_its_role_row(app, sessions):
    with unit_of_work(sessions) as s:
        rows = {r.code: r for r in s.scalars(select(Role))}
    assert set(rows) == set(ROLES) == set(LABELS["role"])
    for lang in ("kk", "ru", "en"):
        with app.test_request_context():
            from flask import g

            g.lang = lang
            for code, row in rows.items():
                assert label(code, "role") == getattr(row, f"name_{lang}"), (lang, code)
            assert label("ombudsman", "role") == "ombudsman"
