"""From uploaded BPMN/DMN bytes to parsed specs and a complete list of problems.

This is the front half of validate/deploy. Each uploaded file goes through:

1. :func:`engine.spiff.xmlsafe.parse_untrusted` (size cap, no DOCTYPE, no entities);
2. XSD validation (BPMN 2.0 with SpiffWorkflow's extension schema, or DMN 1.1-1.3);
3. our own structural checks, for the defects SpiffWorkflow either crashes on or reports
   against the wrong element (a property without a value, a flow to a missing element);
4. a fresh ``SpiffBpmnParser`` fed with the trees, never with file names or bytes;
5. a lint that compiles every script and expression with the sandbox compiler, so that code
   errors are found at deploy time and not in the middle of a child's case.

Every stage records problems instead of stopping, so an analyst sees all of them at once, each
with file, line and BPMN element id. SpiffWorkflow itself stops at the first semantic problem
of a process; that limit remains, but everything checked from the XML is always complete.

Decisions taken here:

* A process with ``isExecutable="false"`` is skipped: modelers use such pools to draw outside
  parties. A BPMN file in which no process is executable is a problem, because bpmn.io writes
  ``isExecutable="false"`` by default and the analyst would otherwise deploy nothing.
* The ``line`` of a code problem is the line of the element that carries the code (task,
  sequence flow, DMN cell); the line inside the script is in the message.
* A timer expression is Python. An unquoted ISO 8601 value (``PT1H``) would compile as a
  variable name and fail when the timer starts, so it is reported as not quoted; a quoted
  literal is also checked as the timer kind expects (date, duration or cycle).
* A DMN input column without an expression makes SpiffWorkflow evaluate the ``repr`` of task
  data found by the column's label; that cannot be checked here, so it is a problem as soon as
  a rule uses the column.
* Library files (already deployed) are trusted to be schema-valid and are not linted; they
  are only searched for called processes and decisions missing from the upload.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.mixins import (
    CallActivityMixin,
    StartEventMixin,
    SubWorkflowTaskMixin,
)
from SpiffWorkflow.dmn.parser.BpmnDmnParser import SCHEMAS as DMN_SCHEMAS
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser

from engine.errors import DeployError, Problem
from engine.spiff.lint import (
    _NS,
    BPMN_NS,
    SPIFF_NS,
    Lint,
    _dmn_ns,
    _Document,
    _owner_id,
)
from engine.spiff.xmlsafe import parse_untrusted

_PREFIXES = {
    BPMN_NS: "bpmn",
    SPIFF_NS: "spiffworkflow",
    "http://www.omg.org/spec/BPMN/20100524/DI": "bpmndi",
    "http://www.omg.org/spec/DD/20100524/DC": "dc",
    "http://www.omg.org/spec/DD/20100524/DI": "di",
    **dict.fromkeys(DMN_SCHEMAS, "dmn"),
}

# lxml keeps the last validation's errors on the schema object itself, so two threads
# validating with the same (module-level) schema would read each other's errors.
_SCHEMA_LOCK = threading.Lock()

# SpiffWorkflow's DMN engine replaces "?" outside quotes by the input value (DMNEngine.evaluate).
# An ISO 8601 date, duration or cycle written without quotes.
_SPIFF_MISSING_TARGET = re.compile(r"perhaps a form has the same ID\? \((?P<target>.*)\)")
_CLAUSE_SEPARATORS = re.compile(r"[\s,;]+")
_NO_ROLE = "the task has no role: put it in a lane named after a role, or set its property 'role'"


@dataclass(frozen=True)
class SourceFile:
    """One uploaded or deployed definition file; whether BPMN or DMN is read from its root."""

    name: str
    content: bytes


@dataclass
class UserTaskInfo:
    """What the inbox needs to know about a manual task, read from the spec's extensions."""

    bpmn_id: str
    name: str | None
    lane: str | None
    role: str | None
    form_key: str | None
    deadline_rule: str | None
    clauses: list[str]
    instructions: str | None
    process_id: str
    """The spec holding the task: the process itself, a subprocess or a called process."""


@dataclass
class ParsedProcess:
    """An executable process of the upload with everything it needs to run."""

    process_id: str
    name: str
    file: str
    spec: BpmnProcessSpec
    subprocess_specs: dict[str, BpmnProcessSpec]
    user_tasks: list[UserTaskInfo]
    called_processes: set[str]
    starter_lanes: list[str]
    properties: dict[str, str]
    files: list[str]


@dataclass
class ParseResult:
    """Parsed processes and every problem found; deploy only when ``problems`` is empty."""

    processes: dict[str, ParsedProcess] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def raise_for_problems(self) -> None:
        """Raise :class:`DeployError` carrying all problems, if there are any."""
        if self.problems:
            raise DeployError(self.problems)


def parse_definitions(
    files: Sequence[SourceFile], library: Sequence[SourceFile] = ()
) -> ParseResult:
    """Parse and check uploaded definitions.

    Args:
        files: The uploaded BPMN and DMN files.
        library: Already deployed files, used only to resolve call activities and decisions
            that ``files`` does not define (a process or decision id in ``files`` wins).

    Returns:
        Every executable process of ``files`` whose spec could be built, and all problems.
    """
    return _Run(files, library).run()


class _Run(Lint):
    """State of one parse_definitions call: documents, the parser and the problems so far."""

    def __init__(self, files: Sequence[SourceFile], library: Sequence[SourceFile]) -> None:
        self.files = list(files)
        self.library = list(library)
        self.docs: dict[str, _Document] = {}
        self.problems: list[Problem] = []
        # Elements whose problem our own checks already explained: SpiffWorkflow's report on
        # the same element would only repeat it, often with a misleading message.
        self.explained: set[tuple[str, str]] = set()
        # Ids defined by uploaded files that could not be parsed: calls to them are not
        # reported again as missing, and are never taken from the library instead.
        self.broken_ids: set[str] = set()
        self.parser = SpiffBpmnParser()
        self.linted: set[tuple[str, str]] = set()

    # -- pipeline ---------------------------------------------------------------------------

    def run(self) -> ParseResult:
        uploads = self._load_all(self.files, library=False)
        library_docs = self._load_all(self.library, library=True)
        for doc in uploads:
            if doc.kind == "dmn":
                self._add_to_parser(doc)
                self._lint_dmn(doc)
        for doc in uploads:
            if doc.kind == "bpmn":
                self._add_to_parser(doc)
        self._resolve_from_library(uploads, library_docs)

        result = ParseResult()
        for doc in uploads:
            if doc.kind == "bpmn" and doc.in_parser:
                for process_id in self._executable_processes(doc):
                    parsed = self._parse_process(doc, process_id)
                    if parsed is not None:
                        result.processes[process_id] = parsed
        result.problems = self._sorted_problems()
        return result

    def _load_all(self, sources: Sequence[SourceFile], *, library: bool) -> list[_Document]:
        docs = []
        uploaded = {f.name for f in self.files}
        seen: set[str] = set()
        for source in sources:
            if library and source.name in uploaded:
                continue  # the upload is a new version of this deployed file
            if source.name in seen:
                if not library:
                    self._add(source.name, None, None, "two uploaded files have the same name")
                continue
            seen.add(source.name)
            doc = self._load(source, library=library)
            if doc is not None:
                self.docs[source.name] = doc
                docs.append(doc)
        return docs

    def _load(self, source: SourceFile, *, library: bool) -> _Document | None:
        try:
            tree = parse_untrusted(source.content, source.name)
        except DeployError as exc:
            self.problems.extend(exc.problems)
            return None
        root = tree.getroot()
        kind, problem = _kind_of(root)
        if kind is None:
            self._add(source.name, root.sourceline, None, problem)
            return None
        doc = _Document(source.name, kind, tree, library)
        for element in root.iter(etree.Element):
            element_id = element.get("id")
            if element_id is not None:
                doc.ids.setdefault(element_id, element)
        if kind == "bpmn":
            doc.process_ids = [p.get("id") for p in root.iterfind("bpmn:process", _NS)]
        else:
            doc.decision_ids = [d.get("id") for d in root.iterfind("dmn:decision", _dmn_ns(root))]
        if library:
            return doc
        if not self._schema_valid(doc):
            # SpiffWorkflow's messages about a file the schema refused would only be noise.
            self.broken_ids.update(doc.process_ids, doc.decision_ids)
            return None
        self._check_structure(doc)
        return doc

    def _schema_valid(self, doc: _Document) -> bool:
        if doc.kind == "bpmn":
            # bpmn-js writes correlation expressions in a form the XSD refuses; SpiffWorkflow's
            # validator renames them before validating, and so do we.
            VALIDATOR.preprocess(doc.tree)
            schema = VALIDATOR.validator
        else:
            schema = _dmn_schema(etree.QName(doc.root).namespace)
        with _SCHEMA_LOCK:
            valid = schema.validate(doc.tree)
            errors = list(schema.error_log)
        for error in errors:
            element = _element_for_error(doc, error.path, error.line)
            self._add(doc.name, error.line, _owner_id(element), _shorten(error.message))
        return valid

    def _check_structure(self, doc: _Document) -> None:
        """Find what SpiffWorkflow would crash on or blame on the wrong element.

        The file is still parsed afterwards, so that its other problems are found too.
        """
        if doc.kind == "bpmn":
            self._check_properties(doc)
            self._check_flows(doc)
        else:
            self._check_decisions(doc)

    def _check_properties(self, doc: _Document) -> None:
        for prop in list(doc.root.iter(f"{{{SPIFF_NS}}}property")):
            name = prop.get("name")
            if name is None:
                self._at(doc, prop, "a property has no name attribute", explain=True)
                prop.getparent().remove(prop)
            elif prop.get("value") is None:
                message = (
                    f"property '{name}' has no value attribute (SpiffWorkflow cannot read it; "
                )
                self._at(doc, prop, message + 'write value="" for an empty value)', explain=True)
                # SpiffWorkflow reads attrib['value'] and fails with KeyError; an empty value
                # lets it go on and report the file's other problems.
                prop.set("value", "")

    def _check_flows(self, doc: _Document) -> None:
        # SpiffWorkflow resolves flow ends among the elements of the flow's own process or
        # subprocess, and blames a missing target on the flow's source with a wrong message.
        scope_ids: dict[etree._Element, set[str]] = {}
        for flow in doc.root.iterfind(".//bpmn:sequenceFlow", _NS):
            scope = flow.getparent()
            if scope not in scope_ids:
                scope_ids[scope] = {e.get("id") for e in scope.iter() if e.get("id")}
            for end in ("sourceRef", "targetRef"):
                ref = flow.get(end)
                if ref not in scope_ids[scope]:
                    where = etree.QName(scope).localname
                    self._at(
                        doc, flow, f"sequence flow {end} '{ref}' is not an element of this {where}"
                    )
                    self.explained.add((doc.name, flow.get("sourceRef") or ""))

    def _add_to_parser(self, doc: _Document, root: etree._Element | None = None) -> None:
        root = doc.root if root is None else root
        try:
            if doc.kind == "dmn":
                self.parser.add_dmn_xml(root, filename=doc.name)
            else:
                self.parser.add_bpmn_xml(root.getroottree(), filename=doc.name)
        except ValidationException as exc:
            self._add_validation(exc, doc)
            self.broken_ids.update(doc.process_ids, doc.decision_ids)
        except Exception as exc:  # SpiffWorkflow raises plain KeyError/TypeError on odd input
            self._add(doc.name, None, None, f"SpiffWorkflow could not read the file: {exc!r}")
            self.broken_ids.update(doc.process_ids, doc.decision_ids)
        else:
            doc.in_parser = True

    def _resolve_from_library(self, uploads: list[_Document], library: list[_Document]) -> None:
        defined = {i for d in uploads for i in (*d.process_ids, *d.decision_ids)}
        providers: dict[str, _Document] = {}
        for doc in library:
            for provided in (*doc.process_ids, *doc.decision_ids):
                providers.setdefault(provided, doc)
        pending = [d for d in uploads if d.kind == "bpmn" and d.in_parser]
        while pending:
            doc = pending.pop()
            for needed in _references(doc):
                if needed in defined or needed in self.broken_ids or needed not in providers:
                    continue
                provider = providers[needed]
                redefined = (defined | self.broken_ids).intersection(provider.process_ids)
                defined.update(provider.process_ids, provider.decision_ids)
                root = provider.root
                if redefined:
                    # Processes the upload redefines are left out, or SpiffWorkflow would
                    # refuse the library file as a duplicate.
                    root = copy.deepcopy(root)
                    for process in root.iterfind("bpmn:process", _NS):
                        if process.get("id") in redefined:
                            root.remove(process)
                self._add_to_parser(provider, root)
                if provider.kind == "bpmn" and provider.in_parser:
                    pending.append(provider)

    def _executable_processes(self, doc: _Document) -> list[str]:
        processes = list(doc.root.iterfind("bpmn:process", _NS))
        # SpiffWorkflow's own rule: a process is executable unless it says otherwise.
        executable = [p.get("id") for p in processes if p.get("isExecutable", "true") == "true"]
        if not executable:
            self._at(
                doc,
                processes[0] if processes else doc.root,
                'no process in this file is executable: set isExecutable="true" on the process '
                "to deploy (bpmn.io sets it to false by default)",
            )
        return executable

    # -- one process ------------------------------------------------------------------------

    def _parse_process(self, doc: _Document, process_id: str) -> ParsedProcess | None:
        try:
            spec = self.parser.get_spec(process_id)
        except ValidationException as exc:
            self._add_validation(exc, doc)
            return None
        except Exception as exc:
            self._add_at(doc.name, process_id, f"SpiffWorkflow could not build it: {exc!r}")
            return None
        subprocess_specs, complete = self._subprocess_specs(spec)
        all_specs = [spec, *subprocess_specs.values()]
        for each in all_specs:
            self._lint_spec(each)
        user_tasks = self._user_tasks(all_specs)
        if not complete:
            return None
        tasks = [ts for s in all_specs for ts in s.task_specs.values()]
        return ParsedProcess(
            process_id=process_id,
            name=spec.description,
            file=doc.name,
            spec=spec,
            subprocess_specs=subprocess_specs,
            user_tasks=user_tasks,
            called_processes={ts.spec for ts in tasks if isinstance(ts, CallActivityMixin)},
            starter_lanes=_unique(
                ts.lane for ts in spec.task_specs.values() if isinstance(ts, StartEventMixin)
            ),
            properties=_properties(doc.ids[process_id]),
            files=self._files_needed(all_specs),
        )

    def _subprocess_specs(self, spec: BpmnProcessSpec) -> tuple[dict[str, BpmnProcessSpec], bool]:
        """Collect embedded and called specs, as ``get_subprocess_specs`` does.

        SpiffWorkflow's version stops at the first missing called process; this one reports
        every call activity whose process is missing and goes on with the others.
        """
        found: dict[str, BpmnProcessSpec] = {}
        complete = True
        pending = [spec]
        while pending:
            current = pending.pop()
            for task_spec in current.task_specs.values():
                if not isinstance(task_spec, SubWorkflowTaskMixin) or task_spec.spec in found:
                    continue
                callee = task_spec.spec
                if callee not in self.parser.process_parsers:
                    complete = False
                    if callee not in self.broken_ids:
                        message = f"calls process '{callee}', which is neither in the upload nor "
                        self._add_at(current.file, task_spec.bpmn_id, message + "deployed")
                    continue
                try:
                    found[callee] = self.parser.get_spec(callee)
                except ValidationException as exc:
                    self._add_validation(exc, self.docs.get(current.file))
                    complete = False
                except Exception as exc:
                    message = f"SpiffWorkflow could not build process '{callee}': {exc!r}"
                    self._add_at(current.file, task_spec.bpmn_id, message)
                    complete = False
                else:
                    pending.append(found[callee])
        return found, complete

    def _files_needed(self, specs: list[BpmnProcessSpec]) -> list[str]:
        names = [s.file for s in specs]
        for each in specs:
            for task_spec in each.task_specs.values():
                decision = (getattr(task_spec, "extensions", None) or {}).get("calledDecisionId")
                dmn_parser = self.parser.dmn_parsers.get(decision) if decision else None
                if dmn_parser is not None:
                    names.append(dmn_parser.filename)
        return _unique(names)

    def _user_tasks(self, specs: list[BpmnProcessSpec]) -> list[UserTaskInfo]:
        tasks = []
        for each in specs:
            seen = set()
            for task_spec in each.task_specs.values():
                # userTask, manualTask and plain bpmn:task all wait for a person.
                if not task_spec.manual or task_spec.bpmn_id in seen:
                    continue
                seen.add(task_spec.bpmn_id)
                extensions = task_spec.extensions or {}
                properties = extensions.get("properties") or {}
                role = properties.get("role") or task_spec.lane
                if not role and self._is_upload(each.file):
                    self._add_at(each.file, task_spec.bpmn_id, _NO_ROLE)
                tasks.append(
                    UserTaskInfo(
                        bpmn_id=task_spec.bpmn_id,
                        name=task_spec.bpmn_name,
                        lane=task_spec.lane,
                        role=role or None,
                        form_key=properties.get("formKey") or None,
                        deadline_rule=properties.get("deadlineRule") or None,
                        clauses=[
                            c for c in _CLAUSE_SEPARATORS.split(properties.get("clauses", "")) if c
                        ],
                        instructions=extensions.get("instructionsForEndUser")
                        or task_spec.documentation,
                        process_id=each.name,
                    )
                )
        return tasks

    # -- recording problems -----------------------------------------------------------------

    def _at(self, doc: _Document, element: Any, message: str, *, explain: bool = False) -> None:
        """Record a problem at ``element``: its line and its own or nearest enclosing id."""
        record = self._explain if explain else self._add
        record(doc.name, element.sourceline, _owner_id(element), message)

    def _add(self, file: str, line: int | None, element_id: str | None, message: str) -> None:
        self.problems.append(Problem(file, line, element_id, message))

    def _explain(self, file: str, line: int | None, element_id: str | None, message: str) -> None:
        self._add(file, line, element_id, message)
        if element_id:
            self.explained.add((file, element_id))

    def _add_at(self, file: str, element_id: str, message: str) -> None:
        doc = self.docs.get(file)
        self._add(file, doc.line_of(element_id) if doc else None, element_id, message)

    def _add_validation(self, exc: ValidationException, doc: _Document | None) -> None:
        """Record a SpiffWorkflow ValidationException with a line looked up by element id.

        SpiffWorkflow 3.2.0 leaves ``line_number`` empty for semantic problems (it reads an
        attribute lxml does not have) and sometimes leaves ``file_name`` empty too.
        """
        element_id = exc.id or None
        file = exc.file_name or (doc.name if doc else "")
        if element_id and (file not in self.docs or element_id not in self.docs[file].ids):
            file = next((d.name for d in self.docs.values() if element_id in d.ids), file)
        message = exc.args[0] if exc.args else str(exc)
        missing = _SPIFF_MISSING_TARGET.search(message)
        if missing is not None:
            if (file, element_id or "") in self.explained:
                return
            message = f"a sequence flow from here goes to '{missing['target']}', which is missing"
        if element_id and (file, element_id) in self.explained:
            return
        target = self.docs.get(file)
        self._add(file, target.line_of(element_id) if target else None, element_id, message)

    def _is_upload(self, file: str) -> bool:
        doc = self.docs.get(file)
        return doc is not None and not doc.library

    def _sorted_problems(self) -> list[Problem]:
        order = {f.name: i for i, f in enumerate([*self.files, *self.library])}
        unique = list(dict.fromkeys(self.problems))

        def key(p: Problem) -> tuple[int, int, str, str]:
            return (order.get(p.file, len(order)), p.line or 0, p.element_id or "", p.message)

        return sorted(unique, key=key)

    def _check_decisions(self, doc: _Document) -> None:
        ns = _dmn_ns(doc.root)
        decisions = doc.root.findall(".//dmn:decision", ns)
        # SpiffWorkflow's DMN parser reads exactly one decision table per file.
        if len(decisions) != 1:
            count = f"this one has {len(decisions)}"
            self._at(doc, doc.root, f"a DMN file must hold exactly one decision; {count}")
        for decision in decisions:
            table = decision.find("dmn:decisionTable", ns)
            if table is None:
                self._at(
                    doc, decision, "the decision has no decision table (all SpiffWorkflow runs)"
                )
                continue
            # SpiffWorkflow returns the first match unless COLLECT, and ignores aggregations.
            policy = f"{table.get('hitPolicy', 'UNIQUE')} {table.get('aggregation', '')}".strip()
            if policy.upper() not in ("UNIQUE", "FIRST", "COLLECT"):
                self._at(
                    doc,
                    table,
                    f"hit policy {policy} is not supported: use UNIQUE, FIRST or COLLECT",
                )


# -- helpers ------------------------------------------------------------------------------


def _kind_of(root: etree._Element) -> tuple[str | None, str]:
    """("bpmn" or "dmn", "") from the root element, or (None, what is wrong with it)."""
    namespace, name = etree.QName(root).namespace or "", etree.QName(root).localname
    if name == "definitions" and namespace == BPMN_NS:
        return "bpmn", ""
    if name == "definitions" and namespace in DMN_SCHEMAS:
        return "dmn", ""
    if name == "definitions" and "DMN" in namespace.upper():
        return None, f"DMN version {namespace} is not supported: save as DMN 1.1, 1.2 or 1.3"
    return None, f"not a BPMN or DMN file: the root element is {_shorten(root.tag)}"


@cache
def _dmn_schema(namespace: str) -> etree.XMLSchema:
    return BpmnValidator(DMN_SCHEMAS[namespace]).validator


def _element_for_error(doc: _Document, path: str | None, line: int | None) -> etree._Element | None:
    if path:
        namespaces = {k: v for k, v in doc.root.nsmap.items() if k}
        try:
            found = doc.tree.xpath(path, namespaces=namespaces)
        except etree.XPathError:
            found = []
        if isinstance(found, list) and len(found) == 1 and isinstance(found[0], etree._Element):
            return found[0]
    if line is not None:
        return next((e for e in doc.root.iter(etree.Element) if e.sourceline == line), None)
    return None


def _properties(process: etree._Element) -> dict[str, str]:
    path = "bpmn:extensionElements/spiffworkflow:properties//spiffworkflow:property"
    found = process.iterfind(path, _NS)
    return {p.get("name"): p.get("value", "") for p in found if p.get("name") is not None}


def _references(doc: _Document) -> list[str]:
    """Process and decision ids a BPMN file refers to through call activities and rules."""
    called = doc.root.xpath(".//bpmn:callActivity/@calledElement", namespaces=_NS)
    decisions = doc.root.xpath(
        ".//bpmn:businessRuleTask/bpmn:extensionElements/spiffworkflow:calledDecisionId/text()",
        namespaces=_NS,
    )
    return [str(r).strip() for r in (*called, *decisions)]


def _shorten(text: str) -> str:
    for namespace, prefix in _PREFIXES.items():
        text = text.replace(f"{{{namespace}}}", f"{prefix}:")
    return text


def _unique(items: Iterable[str | None]) -> list[str]:
    return [item for item in dict.fromkeys(items) if item]
