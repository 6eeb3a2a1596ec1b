"""The diagrams of procedures 1, 2 and 4 open complete in bpmn.io and Camunda Modeler: a shape
for every flow node, lane and participant, inside its lane, and an edge for every flow."""

from __future__ import annotations

import pytest

from engine.config import BPMN_DIR
from engine.spiff.xmlsafe import parse_untrusted

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
DI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
OMGDI = "http://www.omg.org/spec/DD/20100524/DI"

FILES = ("child_without_care.bpmn", "guardianship_appointment.bpmn", "head_order.bpmn")
NODES = {
    "startEvent",
    "endEvent",
    "userTask",
    "scriptTask",
    "businessRuleTask",
    "callActivity",
    "exclusiveGateway",
    "parallelGateway",
    "boundaryEvent",
    "intermediateCatchEvent",
    "receiveTask",
}


def _bounds(shape):
    b = shape.find(f"{{{DC}}}Bounds")
    x, y = float(b.get("x")), float(b.get("y"))
    return x, y, x + float(b.get("width")), y + float(b.get("height"))


@pytest.mark.parametrize("name", FILES)
def test_every_element_has_its_shape_or_edge(name):
    root = parse_untrusted((BPMN_DIR / name).read_bytes(), name).getroot()
    shapes = {s.get("bpmnElement"): s for s in root.iter(f"{{{DI}}}BPMNShape")}
    edges = {e.get("bpmnElement"): e for e in root.iter(f"{{{DI}}}BPMNEdge")}
    nodes = [e for e in root.iter() if isinstance(e.tag, str) and e.tag.split("}")[1] in NODES]
    lanes = list(root.iter(f"{{{BPMN}}}lane"))
    participants = list(root.iter(f"{{{BPMN}}}participant"))
    flows = list(root.iter(f"{{{BPMN}}}sequenceFlow"))
    assert nodes and lanes and participants and flows
    missing = [e.get("id") for e in [*nodes, *lanes, *participants] if e.get("id") not in shapes]
    assert missing == []
    for flow in flows:
        edge = edges.get(flow.get("id"))
        assert edge is not None, flow.get("id")
        assert len(edge.findall(f"{{{OMGDI}}}waypoint")) >= 2
    # Each node is drawn inside the band of its lane.
    for lane in lanes:
        _, top, _, bottom = _bounds(shapes[lane.get("id")])
        for ref in lane.iterfind(f"{{{BPMN}}}flowNodeRef"):
            _, y1, _, y2 = _bounds(shapes[ref.text])
            assert top <= y1 and y2 <= bottom, (lane.get("name"), ref.text)


def test_the_decision_table_has_its_shape():
    name = "guardianship_eligibility.dmn"
    root = parse_untrusted((BPMN_DIR / name).read_bytes(), name).getroot()
    shapes = {s.get("dmnElementRef") for s in root.iter() if str(s.tag).endswith("DMNShape")}
    decisions = {d.get("id") for d in root.iter() if str(d.tag).endswith("}decision")}
    assert decisions == {"guardianship_eligibility"} <= shapes
