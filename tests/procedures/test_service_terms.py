"""Static checks of procedures 3, 5, 6, 7 and 8: their deadline rules, the timers that
mirror them, the clauses they cite and their diagram interchange."""

from __future__ import annotations

import re

import pytest
import yaml
from lxml import etree

from engine.config import BPMN_DIR

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
DI = "http://www.omg.org/spec/BPMN/20100524/DI"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN, "bpmndi": DI, "spiffworkflow": SPIFF}

# Process id -> the clauses the issue assigns to it.
PROCESSES = {
    "adaptation_centre_placement": {"15.4", "15.5"},
    "guest_family_placement": {"15.11"},
    "property_disposal_certificate": {"15.2"},
    "bullying_help": {"15.15", "15.16", "15.18", "15.20"},
    "information_request": {"14"},
}
# Rule keys are prefixed with the procedure's short name.
PREFIX = {
    "adaptation_centre_placement": "adaptation_centre",
    "guest_family_placement": "guest_family",
    "property_disposal_certificate": "property_certificate",
    "bullying_help": "bullying",
    "information_request": "information_request",
}
RULES = yaml.safe_load((BPMN_DIR / "deadlines-services.yaml").read_text(encoding="utf-8"))["rules"]
FLOW_NODES = (
    "startEvent",
    "endEvent",
    "userTask",
    "scriptTask",
    "exclusiveGateway",
    "receiveTask",
    "boundaryEvent",
    "intermediateCatchEvent",
    "callActivity",
    "businessRuleTask",
)


def _tree(pid):
    return etree.parse(str(BPMN_DIR / f"{pid}.bpmn"))


def _props(element):
    return {
        p.get("name"): p.get("value")
        for p in element.findall(
            "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", NS
        )
    }


def _clauses(text):
    return {c.strip() for c in (text or "").split(",") if c.strip()}


@pytest.mark.parametrize("pid", sorted(PROCESSES))
def test_process_and_tasks_cite_their_clauses(pid):
    process = _tree(pid).find(f"bpmn:process[@id='{pid}']", NS)
    assert _clauses(_props(process).get("clauses")) == PROCESSES[pid]
    for task in process.findall("bpmn:userTask", NS) + process.findall("bpmn:callActivity", NS):
        cited = _clauses(_props(task).get("clauses"))
        assert cited, f"{pid}: {task.get('id')} cites no clause"
        if task.tag == f"{{{BPMN}}}userTask":
            assert cited <= PROCESSES[pid], (task.get("id"), cited)
        else:
            # The order of the head executes Reg 7 and 18.9 for the procedure.
            assert task.get("calledElement") == "head_order" and cited == {"7", "18.9"}


def test_every_rule_is_used_and_every_used_rule_exists():
    used = set()
    for pid in PROCESSES:
        for element in _tree(pid).iter():
            rule = _props(element).get("deadlineRule") if element.tag.startswith("{") else None
            if rule:
                assert rule in RULES, f"{pid}: {element.get('id')} names unknown rule {rule}"
                assert rule.split(".")[0] == PREFIX[pid], (pid, rule)
                used.add(rule)
    assert used == set(RULES)


def test_rules_follow_the_brief():
    # BRIEF §6 row 4: 10 working days, secondary source only.
    assert RULES["guest_family.service_term"]["value"] == 10
    assert RULES["guest_family.service_term"]["unit"] == "working_days"
    # BRIEF §1(b): the maximum stay is not verified; it must say so.
    assert RULES["adaptation_centre.max_stay"]["verified"] is False
    for key, rule in RULES.items():
        assert rule["basis"].strip(), key
        assert "verified" in rule, f"{key}: say whether the value is verified"


def _iso(rule):
    unit = {"hours": "PT{}H", "calendar_days": "P{}D"}.get(rule["unit"])
    assert unit, f"a BPMN duration cannot express {rule['unit']}"
    return unit.format(rule["value"])


@pytest.mark.parametrize("pid", sorted(PROCESSES))
def test_timer_durations_equal_their_rules(pid):
    for event in _tree(pid).iter(f"{{{BPMN}}}boundaryEvent", f"{{{BPMN}}}intermediateCatchEvent"):
        duration = event.find("bpmn:timerEventDefinition/bpmn:timeDuration", NS)
        if duration is None:
            continue
        rule = _props(event).get("deadlineRule")
        assert rule, f"{pid}: timer {event.get('id')} names no deadline rule"
        assert duration.text.strip() == f'"{_iso(RULES[rule])}"', (event.get("id"), rule)
        host = event.get("attachedToRef")
        if host:
            # A boundary timer runs out with the deadline of the task it watches.
            task = _tree(pid).find(f".//*[@id='{host}']")
            assert _props(task).get("deadlineRule") == rule


@pytest.mark.parametrize("pid", sorted(PROCESSES))
def test_diagram_interchange_is_complete(pid):
    tree = _tree(pid)
    shapes = {s.get("bpmnElement") for s in tree.iter(f"{{{DI}}}BPMNShape")}
    edges = {
        e.get("bpmnElement"): len(e.findall("{http://www.omg.org/spec/DD/20100524/DI}waypoint"))
        for e in tree.iter(f"{{{DI}}}BPMNEdge")
    }
    process = tree.find(f"bpmn:process[@id='{pid}']", NS)
    needed = [n.get("id") for kind in FLOW_NODES for n in process.findall(f"bpmn:{kind}", NS)]
    needed += [lane.get("id") for lane in process.iter(f"{{{BPMN}}}lane")]
    needed += [p.get("id") for p in tree.iter(f"{{{BPMN}}}participant")]
    assert [n for n in needed if n not in shapes] == []
    for flow in process.findall("bpmn:sequenceFlow", NS):
        assert edges.get(flow.get("id"), 0) >= 2, flow.get("id")
    # Every flow node sits in exactly one lane (lanes are role codes).
    in_lanes = [r.text for r in process.iter(f"{{{BPMN}}}flowNodeRef")]
    nodes = [n.get("id") for kind in FLOW_NODES for n in process.findall(f"bpmn:{kind}", NS)]
    assert sorted(in_lanes) == sorted(nodes)
    assert all(
        re.fullmatch(r"[a-z_]+", lane.get("name")) for lane in process.iter(f"{{{BPMN}}}lane")
    )
