"""The regulation coverage table (docs/coverage.md) agrees with the clauses the BPMN cites.

Each process and task names the clauses it executes in a ``clauses`` property. The table
lists, per clause, the processes that execute it (or "not a procedure" with a reason). This
test fails when a clause cited in a process is not listed for that process in the table, when
the table lists a process whose BPMN does not cite the clause, when a clause of Reg 7, 13,
14, 15 or 18 has no row, or when a task named in the table is not in its processes.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from engine.config import BPMN_DIR, PROJECT_ROOT
from engine.spiff.xmlsafe import parse_untrusted

COVERAGE = PROJECT_ROOT / "docs" / "coverage.md"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"

# The procedures of issue 3 and the files that hold them.
PROCEDURES = {
    "child_without_care": "child_without_care.bpmn",
    "guardianship_appointment": "guardianship_appointment.bpmn",
    "adaptation_centre_placement": "adaptation_centre_placement.bpmn",
    "head_order": "head_order.bpmn",
    "guest_family_placement": "guest_family_placement.bpmn",
    "property_disposal_certificate": "property_disposal_certificate.bpmn",
    "bullying_help": "bullying_help.bpmn",
    "information_request": "information_request.bpmn",
}

REQUIRED = {
    "7",
    "14",
    *(f"13.{n}" for n in range(1, 5)),
    *(f"15.{n}" for n in range(1, 26)),
    *(f"18.{n}" for n in range(1, 12)),
}

_CLAUSE = re.compile(r"^\d+(\.\d+)?$")
_IDS = re.compile(r"`([A-Za-z_][\w.-]*)`")
_SEPARATORS = re.compile(r"[\s,;]+")


class Row:
    def __init__(self, clause: str, processes: list[str], tasks: list[str], notes: str) -> None:
        self.clause, self.processes, self.tasks, self.notes = clause, processes, tasks, notes


def read_table(path: Path = COVERAGE) -> list[Row]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not cells or not _CLAUSE.match(cells[0]):
            continue  # the header and its rule
        assert len(cells) == 5, f"row {cells[0]}: expected 5 cells, got {len(cells)}"
        clause, _summary, executed_by, main_tasks, notes = cells
        if executed_by.lower().startswith("not a procedure"):
            assert notes, f"row {clause}: 'not a procedure' needs the reason in the notes"
            processes = []
        else:
            processes = _IDS.findall(executed_by)
            assert processes, f"row {clause}: name the processes in backticks"
        rows.append(Row(clause, processes, _IDS.findall(main_tasks), notes))
    return rows


def read_bpmn(directory: Path = BPMN_DIR) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Clauses cited per process (process and task level) and the element ids per process."""
    cited: dict[str, set[str]] = defaultdict(set)
    elements: dict[str, set[str]] = defaultdict(set)
    for path in sorted(directory.glob("*.bpmn")):
        tree = parse_untrusted(path.read_bytes(), path.name)
        for process in tree.getroot().iterfind(f"{{{BPMN_NS}}}process"):
            pid = process.get("id")
            elements[pid].update(e.get("id") for e in process.iter() if e.get("id"))
            for prop in process.iter(f"{{{SPIFF_NS}}}property"):
                if prop.get("name") == "clauses":
                    cited[pid].update(c for c in _SEPARATORS.split(prop.get("value", "")) if c)
    return dict(cited), dict(elements)


@pytest.fixture(scope="module")
def table() -> list[Row]:
    return read_table()


@pytest.fixture(scope="module")
def bpmn() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    return read_bpmn()


def test_every_clause_of_reg_7_13_14_15_18_has_a_row(table):
    assert REQUIRED - {r.clause for r in table} == set()
    unknown = {p for r in table for p in r.processes} - set(PROCEDURES)
    assert unknown == set(), "the table names processes that are not procedures of issue 3"


def cited_not_listed(table: list[Row], cited: dict[str, set[str]]) -> list[str]:
    """Clauses a process cites in its BPMN that the table does not list for it."""
    listed = defaultdict(set)
    for row in table:
        listed[row.clause].update(row.processes)
    return sorted(
        f"{clause} ({pid})"
        for pid, clauses in cited.items()
        for clause in clauses
        if pid not in listed.get(clause, set())
    )


def listed_not_cited(table: list[Row], cited: dict[str, set[str]]) -> list[str]:
    """Processes the table lists for a clause that their BPMN does not cite."""
    return sorted(
        f"{row.clause} ({pid})"
        for row in table
        for pid in row.processes
        # A procedure still being written has no file yet; the others must agree.
        if (BPMN_DIR / PROCEDURES[pid]).exists() and row.clause not in cited.get(pid, set())
    )


def test_every_clause_cited_in_bpmn_is_listed_for_its_process(table, bpmn):
    missing = cited_not_listed(table, bpmn[0])
    assert missing == [], "cited in BPMN but not in docs/coverage.md: " + ", ".join(missing)


def test_every_process_the_table_names_cites_the_clause(table, bpmn):
    wrong = listed_not_cited(table, bpmn[0])
    assert wrong == [], "listed in docs/coverage.md but not cited in the BPMN: " + ", ".join(wrong)


def test_main_tasks_exist_in_their_processes(table, bpmn):
    _, elements = bpmn
    unknown = []
    for row in table:
        present = [p for p in row.processes if p in elements]
        if not present:
            continue
        known = set().union(*(elements[p] for p in present))
        unknown += [f"{row.clause}: {t}" for t in row.tasks if t not in known]
    assert unknown == []


def test_every_procedure_of_issue_3_has_its_file(bpmn):
    cited, _ = bpmn
    for pid, name in PROCEDURES.items():
        assert (BPMN_DIR / name).exists(), name
        assert cited.get(pid), f"{name} cites no clause"


def test_the_check_catches_disagreements_both_ways(tmp_path, bpmn):
    text = COVERAGE.read_text(encoding="utf-8")
    edited = tmp_path / "coverage.md"
    # Drop the row of 15.3 and claim that head_order executes 15.4.
    lines = [line for line in text.splitlines() if not line.startswith("| 15.3 |")]
    lines = [
        line.replace(
            "| `adaptation_centre_placement` |", "| `adaptation_centre_placement`, `head_order` |"
        )
        if line.startswith("| 15.4 |")
        else line
        for line in lines
    ]
    edited.write_text("\n".join(lines), encoding="utf-8")
    rows = read_table(edited)
    assert cited_not_listed(rows, bpmn[0]) == ["15.3 (child_without_care)"]
    assert listed_not_cited(rows, bpmn[0]) == ["15.4 (head_order)"]
