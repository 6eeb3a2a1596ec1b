"""The lint of deploy: every piece of code in a spec compiled with the sandbox compiler.

Script tasks, pre/post scripts, gateway conditions, timer, conditional and message
expressions, multi-instance and loop expressions, service-task parameters and every DMN
input, input cell and output cell are compiled at deploy time, so that code errors are found
here and not in the middle of a child's case. Each problem names the element that carries
the code; the line inside the script is in the message.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import AdHocSubprocessSpec, BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.event_definitions import (
    ConditionalEventDefinition,
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    MultipleEventDefinition,
    TimeDateEventDefinition,
)
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins import (
    EventBasedGatewayMixin,
    ScriptTaskMixin,
)
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask, StandardLoopTask
from SpiffWorkflow.specs.MultiChoice import MultiChoice

from engine.errors import ScriptError

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
_NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}

_DMN_QUESTION_MARK = re.compile(r"(\?)(?=(?:[^'\"]|['\"][^'\"]*['\"])*$)")


_UNQUOTED_ISO = re.compile(
    r"^(R\d*/)?(P[\dYMWDTHS.,]*\d[\dYMWDTHS.,]*|\d{4}-\d{2}-\d{2}\S*)(/\S+)?$", re.IGNORECASE
)


_COMPILER_LINE = re.compile(r"^line \d+: ", re.IGNORECASE)


@dataclass
class _Document:
    name: str
    kind: str  # "bpmn" or "dmn"
    tree: etree._ElementTree
    library: bool
    ids: dict[str, etree._Element] = field(default_factory=dict)
    process_ids: list[str] = field(default_factory=list)
    decision_ids: list[str] = field(default_factory=list)
    in_parser: bool = False

    @property
    def root(self) -> etree._Element:
        return self.tree.getroot()

    def line_of(self, element_id: str | None) -> int | None:
        element = self.ids.get(element_id) if element_id else None
        return element.sourceline if element is not None else None


def _dmn_ns(root: etree._Element) -> dict[str, str]:
    return {"dmn": etree.QName(root).namespace or ""}


def _dmn_text(element: Any, ns: dict[str, str]) -> str | None:
    if element is None:
        return None
    text = element.find("dmn:text", ns)
    return text.text if text is not None else None


def _column_label(column: Any, ns: dict[str, str]) -> str:
    return (
        column.get("label")
        or _dmn_text(column.find("dmn:inputExpression", ns), ns)
        or column.get("id")
        or "?"
    )


def _dmn_cell_expression(input_expression: str, cell: str) -> str | None:
    """Build the expression SpiffWorkflow's DMNEngine evaluates for one input cell.

    Mirrors ``DMNEngine.evaluate``: "?" stands for the input value; a cell that parses as
    an expression is compared with ``==``; a cell that only parses after a left operand
    (``> 18``, ``in ('a', 'b')``) is appended to the input expression. None: neither parses.
    Only the ``?`` form evaluates the cell with a variable in place of the input, so that one
    is compiled as written.
    """
    replaced = _DMN_QUESTION_MARK.sub("dmninputexpr", cell)
    if "dmninputexpr" in replaced:
        return replaced
    if _parses(cell):
        return f"({input_expression}) == ({cell})"
    if _parses(f"v {cell}"):
        return input_expression + cell
    return None


def _parses(source: str) -> bool:
    # The same check SpiffWorkflow makes (PythonScriptEngine.validate is ast.parse): it only
    # parses, nothing runs.
    try:
        ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def _timer_value_problem(timer: TimerEventDefinition, value: object) -> str | None:
    if not isinstance(value, str):
        return f"timer expression gives {type(value).__name__}, not an ISO 8601 string"
    try:
        if isinstance(timer, TimeDateEventDefinition):
            if not hasattr(TimerEventDefinition.parse_time_or_duration(value), "tzinfo"):
                raise ValueError("a duration where a date and time is expected")
        elif isinstance(timer, DurationTimerEventDefinition):
            TimerEventDefinition.parse_iso_duration(value)
        elif isinstance(timer, CycleTimerEventDefinition):
            TimerEventDefinition.parse_iso_recurring_interval(value)
    except Exception as exc:  # SpiffWorkflow raises bare Exception for bad durations
        return f"timer value {value!r} is not valid ISO 8601 for this timer: {exc}"
    return None


def _code_of(task_spec: Any) -> Iterable[tuple[str, str, bool]]:
    """Yield (what, source, is_script) for the code a task spec itself holds."""
    if isinstance(task_spec, ScriptTaskMixin) and (task_spec.script or "").strip():
        yield "script", task_spec.script, True
    for attribute, what in (("prescript", "preScript"), ("postscript", "postScript")):
        source = getattr(task_spec, attribute, None)
        if source:
            yield what, source, True
    if isinstance(task_spec, StandardLoopTask) and task_spec.condition:
        yield "loop condition", task_spec.condition, False
    if isinstance(task_spec, MultiInstanceTask):
        if task_spec.cardinality:
            yield "multi-instance cardinality", task_spec.cardinality, False
        if task_spec.condition:
            yield "multi-instance completion condition", task_spec.condition, False
    for name, param in (getattr(task_spec, "operation_params", None) or {}).items():
        yield f"service task parameter '{name}'", param.get("value") or "", False


def _owner_id(element: etree._Element | None) -> str | None:
    """The id of the element itself or of its nearest ancestor that has one."""
    while element is not None:
        if element.get("id"):
            return element.get("id")
        element = element.getparent()
    return None


class Lint:
    """The lint half of a parse run (mixed into ``parsing._Run``, which records problems)."""

    def _lint_spec(self, spec: BpmnProcessSpec) -> None:
        if not self._is_upload(spec.file) or (spec.file, spec.name) in self.linted:
            return
        self.linted.add((spec.file, spec.name))
        doc = self.docs[spec.file]
        for task_spec in spec.task_specs.values():
            bpmn_id = getattr(task_spec, "bpmn_id", None)
            if bpmn_id is None:  # SpiffWorkflow's own control tasks (Start, joins, splits)
                continue
            if isinstance(task_spec, ScriptTaskMixin) and not (task_spec.script or "").strip():
                self._add_at(doc.name, bpmn_id, "the script task has no script")
            for what, source, is_script in _code_of(task_spec):
                self._compile(doc, bpmn_id, what, source, script=is_script)
            if isinstance(task_spec, MultiChoice):
                self._lint_conditions(doc, task_spec)
            event_definition = getattr(task_spec, "event_definition", None)
            if isinstance(task_spec, EventBasedGatewayMixin):
                # The gateway takes over the events of the catch events that follow it, in
                # the order of its outputs; report each against its own catch event.
                for each, output in zip(
                    event_definition.event_definitions, task_spec.outputs, strict=False
                ):
                    self._lint_event(doc, getattr(output, "bpmn_id", None) or bpmn_id, each)
            elif event_definition is not None:
                self._lint_event(doc, bpmn_id, event_definition)
        if isinstance(spec, AdHocSubprocessSpec) and spec.completion_condition:
            self._compile(doc, spec.name, "completion condition", spec.completion_condition)

    def _lint_conditions(self, doc: _Document, gateway: Any) -> None:
        for condition, target_name in gateway.cond_task_specs:
            if condition is None:  # the default flow
                continue
            target = target_name.removesuffix(".BoundaryEventSplit")
            flows = doc.root.xpath(
                ".//bpmn:sequenceFlow[@sourceRef=$s and @targetRef=$t]",
                namespaces=_NS,
                s=gateway.bpmn_id,
                t=target,
            )
            if len(flows) > 1:  # several flows to one target: the condition tells them apart
                flows = [
                    f
                    for f in flows
                    if f.findtext("bpmn:conditionExpression", namespaces=_NS) == condition.args[0]
                ]
            flow_id = flows[0].get("id") if len(flows) == 1 else gateway.bpmn_id
            what = f"condition of the flow from '{gateway.bpmn_id}' to '{target}'"
            self._compile(doc, flow_id, what, condition.args[0])

    def _lint_event(self, doc: _Document, bpmn_id: str, definition: Any) -> None:
        if isinstance(definition, MultipleEventDefinition):
            for each in definition.event_definitions:
                self._lint_event(doc, bpmn_id, each)
        elif isinstance(definition, TimerEventDefinition):
            self._lint_timer(doc, bpmn_id, definition)
        elif isinstance(definition, ConditionalEventDefinition):
            self._compile(doc, bpmn_id, "condition of the event", definition.expression or "")
        else:
            payload = getattr(definition, "expression", None)
            if payload:
                self._compile(doc, bpmn_id, f"payload of event '{definition.name}'", payload)
            correlations = [
                *getattr(definition, "correlation_properties", ()),
                *getattr(definition, "process_correlations", ()),
            ]
            for prop in correlations:
                # Correlation properties are declared once per file; report them there.
                element_id = prop.name if prop.name in doc.ids else bpmn_id
                what = f"retrieval expression of correlation property '{prop.name}'"
                self._compile(doc, element_id, what, prop.retrieval_expression or "")

    def _lint_timer(self, doc: _Document, bpmn_id: str, timer: TimerEventDefinition) -> None:
        text = (timer.expression or "").strip()
        if _UNQUOTED_ISO.match(text):
            why = f"timer expressions are Python, write '{text}' in quotes"
            self._add_at(doc.name, bpmn_id, f"timer expression {text} is not quoted: {why}")
            return
        if not self._compile(doc, bpmn_id, "timer expression", timer.expression or ""):
            return
        try:
            value = ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return  # a variable or a computation: only its run-time value can be checked
        message = _timer_value_problem(timer, value)
        if message is not None:
            self._add_at(doc.name, bpmn_id, message)

    def _lint_dmn(self, doc: _Document) -> None:
        if not doc.in_parser:
            return
        ns = _dmn_ns(doc.root)
        for table in doc.root.iterfind("dmn:decision/dmn:decisionTable", ns):
            inputs = table.findall("dmn:input", ns)
            outputs = table.findall("dmn:output", ns)
            input_ok = [self._lint_dmn_input(doc, ns, column, table) for column in inputs]
            for row, rule in enumerate(table.iterfind("dmn:rule", ns), start=1):
                entries = rule.findall("dmn:inputEntry", ns)
                results = rule.findall("dmn:outputEntry", ns)
                if len(entries) != len(inputs) or len(results) != len(outputs):
                    counts = f"{len(entries)}/{len(results)} for {len(inputs)}/{len(outputs)}"
                    self._at(doc, rule, f"rule {row}: input/output entries {counts} columns")
                    continue
                for column, entry, ok in zip(inputs, entries, input_ok, strict=True):
                    if ok:
                        self._lint_dmn_cell(doc, ns, row, column, entry)
                for column, entry in zip(outputs, results, strict=True):
                    text = _dmn_text(entry, ns)
                    if text:
                        label = column.get("name") or column.get("label") or column.get("id")
                        what = f"rule {row}, output '{label}'"
                        self._compile(doc, _owner_id(entry), what, text, explain=True)

    def _lint_dmn_input(self, doc: _Document, ns: dict[str, str], column: Any, table: Any) -> bool:
        expression = _dmn_text(column.find("dmn:inputExpression", ns), ns)
        label = _column_label(column, ns)
        if expression is None:
            column_index = table.findall("dmn:input", ns).index(column)
            used = any(
                _dmn_text(rule.findall("dmn:inputEntry", ns)[column_index], ns) not in (None, "-")
                for rule in table.iterfind("dmn:rule", ns)
                if len(rule.findall("dmn:inputEntry", ns)) > column_index
            )
            if used:
                why = "(SpiffWorkflow would evaluate task data found by the label)"
                self._at(doc, column, f"input column '{label}' has no expression {why}")
            return False
        return self._compile(doc, column.get("id"), f"input column '{label}'", expression)

    def _lint_dmn_cell(
        self, doc: _Document, ns: dict[str, str], row: int, column: Any, entry: Any
    ) -> None:
        text = _dmn_text(entry, ns)
        if text is None or text == "-":  # "any value"
            return
        input_expression = _dmn_text(column.find("dmn:inputExpression", ns), ns) or ""
        what = f"rule {row}, column '{_column_label(column, ns)}'"
        expression = _dmn_cell_expression(input_expression, text)
        if expression is None:
            example = "(such as 'a', > 18 or 3 < ? < 10)"
            self._at(doc, entry, f"{what}: {text!r} is neither a value nor a comparison {example}")
            return
        self._compile(doc, _owner_id(entry), what, expression)

    def _compile(
        self,
        doc: _Document,
        element_id: str | None,
        what: str,
        source: str,
        *,
        script: bool = False,
        explain: bool = False,
    ) -> bool:
        """Compile code under the sandbox compiler; record a problem and return False if refused."""
        from engine.sandbox.compiler import compile_expression, compile_script

        kind = "script" if script else "expression"
        try:
            (compile_script if script else compile_expression)(source)
        except ScriptError as exc:
            where = f"line {exc.line} of the {kind}: " if exc.line else ""
            # The compiler may start its message with the line too; say it once.
            message = f"{what}: {where}{_COMPILER_LINE.sub('', exc.message)}"
        except Exception as exc:  # a compiler crash on odd input must not hide the other problems
            message = f"{what}: the {kind} could not be compiled: {exc!r}"
        else:
            return True
        record = self._explain if explain else self._add
        record(doc.name, doc.line_of(element_id), element_id, message)
        return False
