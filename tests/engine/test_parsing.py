"""From uploaded bytes to specs: every problem, with file, line and element id."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import DeployError
from engine.spiff.parsing import ParseResult, SourceFile, UserTaskInfo, parse_definitions

DATA = Path(__file__).resolve().parent.parent / "data" / "bpmn" / "parsing"


def _file(name: str, content: bytes | None = None) -> SourceFile:
    return SourceFile(name, (DATA / name).read_bytes() if content is None else content)


def _line(name: str, needle: str) -> int:
    """The line of the file that holds ``needle`` (which must be on exactly one line)."""
    lines = [
        i for i, text in enumerate((DATA / name).read_text().splitlines(), 1) if needle in text
    ]
    assert len(lines) == 1, (name, needle, lines)
    return lines[0]


def _where(result: ParseResult) -> list[tuple[str, int | None, str | None]]:
    return [(p.file, p.line, p.element_id) for p in result.problems]


def _messages(result: ParseResult) -> list[str]:
    return [p.message for p in result.problems]


# -- a valid upload ----------------------------------------------------------------------------


def test_a_valid_process_parses_with_what_the_inbox_needs():
    result = parse_definitions(
        [_file("guardianship.bpmn"), _file("risk_level.dmn")], library=[_file("sign_order.bpmn")]
    )

    assert result.problems == []
    assert list(result.processes) == ["guardianship_check"]
    process = result.processes["guardianship_check"]
    assert (process.process_id, process.name, process.file) == (
        "guardianship_check",
        "Guardianship check",
        "guardianship.bpmn",
    )
    assert process.spec.name == "guardianship_check"
    assert set(process.subprocess_specs) == {"home_visit", "sign_order"}
    assert process.called_processes == {"sign_order"}
    assert process.starter_lanes == ["specialist"]
    assert process.properties == {"procedureCode": "G-1", "regulation": "Reg 7"}
    assert process.files == ["guardianship.bpmn", "sign_order.bpmn", "risk_level.dmn"]
    tasks = {t.bpmn_id: t for t in process.user_tasks}
    assert tasks == {
        "register_application": UserTaskInfo(
            bpmn_id="register_application",
            name="Register the application",
            lane="specialist",
            role="specialist",
            form_key="guardianship/register",
            deadline_rule="register_3wd",
            clauses=["7.1", "7.2", "18.9"],
            instructions="Register the application of {{ applicant_name }}",
            process_id="guardianship_check",
        ),
        "legal_review": UserTaskInfo(
            bpmn_id="legal_review",
            name="Legal review",
            lane="head",
            role="lawyer",  # the property wins over the lane
            form_key="orders/review",
            deadline_rule=None,
            clauses=[],
            instructions=None,
            process_id="guardianship_check",
        ),
        "write_visit_report": UserTaskInfo(
            bpmn_id="write_visit_report",
            name="Write the visit report",
            lane="specialist",  # inherited from the embedded subprocess
            role="specialist",
            form_key="guardianship/visit",
            deadline_rule=None,
            clauses=[],
            instructions=None,
            process_id="home_visit",
        ),
        "head_signs": UserTaskInfo(
            bpmn_id="head_signs",
            name="The head signs",
            lane="head",
            role="head",
            form_key="orders/sign",
            deadline_rule="sign_1wd",
            clauses=[],
            instructions=None,
            process_id="sign_order",
        ),
    }


def test_documentation_is_the_instruction_when_there_is_no_instruction_extension():
    content = (DATA / "guardianship.bpmn").read_bytes()
    content = content.replace(
        b"<spiffworkflow:instructionsForEndUser>Register the application of {{ applicant_name }}"
        b"</spiffworkflow:instructionsForEndUser>",
        b"",
    )

    result = parse_definitions(
        [_file("guardianship.bpmn", content), _file("risk_level.dmn"), _file("sign_order.bpmn")]
    )

    assert result.problems == []
    tasks = {t.bpmn_id: t for t in result.processes["guardianship_check"].user_tasks}
    assert tasks["register_application"].instructions == "Check the applicant's identity."


def test_problems_raise_one_deploy_error_with_all_of_them():
    result = parse_definitions([_file("several_defects.bpmn")])

    with pytest.raises(DeployError) as info:
        result.raise_for_problems()

    assert info.value.problems == result.problems
    parse_definitions([_file("sign_order.bpmn")]).raise_for_problems()


# -- the library of deployed files --------------------------------------------------------


def test_a_call_activity_and_a_decision_resolve_from_the_library():
    result = parse_definitions(
        [_file("guardianship.bpmn")],
        library=[_file("sign_order.bpmn"), _file("risk_level.dmn"), _file("timers.bpmn")],
    )

    assert result.problems == []
    # Only the upload's processes are results; the unrelated library file was not even read.
    assert list(result.processes) == ["guardianship_check"]
    assert result.processes["guardianship_check"].files == [
        "guardianship.bpmn",
        "sign_order.bpmn",
        "risk_level.dmn",
    ]


def test_the_upload_wins_over_the_library():
    old = (DATA / "sign_order.bpmn").read_bytes().replace(b"The head signs", b"Old signing")
    old_copy = SourceFile("old_sign_order.bpmn", old)

    result = parse_definitions(
        [_file("guardianship.bpmn"), _file("risk_level.dmn"), _file("sign_order.bpmn")],
        library=[old_copy, SourceFile("sign_order.bpmn", old)],
    )

    assert result.problems == []
    assert set(result.processes) == {"guardianship_check", "sign_order"}
    names = {t.bpmn_id: t.name for t in result.processes["guardianship_check"].user_tasks}
    assert names["head_signs"] == "The head signs"


def test_a_call_to_a_missing_process_is_reported_at_the_call_activity():
    result = parse_definitions([_file("call_missing.bpmn")])

    assert _where(result) == [
        ("call_missing.bpmn", _line("call_missing.bpmn", 'id="review"'), "review")
    ]
    assert _messages(result) == [
        "calls process 'does_not_exist', which is neither in the upload nor deployed"
    ]
    assert result.processes == {}


def test_a_missing_decision_is_reported_at_the_business_rule_task():
    result = parse_definitions([_file("guardianship.bpmn"), _file("sign_order.bpmn")])

    assert _where(result) == [
        ("guardianship.bpmn", _line("guardianship.bpmn", 'id="assess_risk"'), "assess_risk")
    ]
    assert _messages(result)[0].startswith('No DMN Diagram available with id "risk_level"')


# -- XML and schema ------------------------------------------------------------------------


def test_schema_errors_carry_the_line_and_the_nearest_element_id():
    result = parse_definitions([_file("xsd_invalid.bpmn")])

    name = "xsd_invalid.bpmn"
    assert _where(result) == [
        (name, _line(name, "Documentation must come first"), "start"),
        (name, _line(name, 'priority="high"'), "review"),
    ]
    assert _messages(result)[0].startswith(
        "Element 'bpmn:documentation': This element is not expected."
    )
    assert _messages(result)[1] == (
        "Element 'bpmn:userTask', attribute 'priority': The attribute 'priority' is not allowed."
    )
    assert result.processes == {}


def test_a_file_that_is_neither_bpmn_nor_dmn_is_refused():
    result = parse_definitions([SourceFile("notes.xml", b"<notes><note/></notes>")])

    assert _where(result) == [("notes.xml", 1, None)]
    assert _messages(result) == ["not a BPMN or DMN file: the root element is notes"]


def test_an_unsupported_dmn_version_is_named():
    content = (
        (DATA / "risk_level.dmn")
        .read_bytes()
        .replace(
            b"https://www.omg.org/spec/DMN/20191111/MODEL/",
            b"https://www.omg.org/spec/DMN/20230324/MODEL/",
        )
    )

    result = parse_definitions([SourceFile("risk.dmn", content)])

    assert _where(result) == [("risk.dmn", 2, None)]
    assert (
        "DMN version https://www.omg.org/spec/DMN/20230324/MODEL/ is not supported"
        in (_messages(result)[0])
    )


def test_two_uploaded_files_with_one_name_are_refused():
    result = parse_definitions([_file("sign_order.bpmn"), _file("sign_order.bpmn")])

    assert _where(result) == [("sign_order.bpmn", None, None)]
    assert _messages(result) == ["two uploaded files have the same name"]


def test_a_file_without_an_executable_process_is_reported():
    name = "script_syntax.bpmn"
    content = (DATA / name).read_bytes().replace(b'isExecutable="true"', b'isExecutable="false"')

    result = parse_definitions([_file(name, content)])

    assert _where(result) == [
        (name, _line(name, '<bpmn:process id="script_syntax"'), "script_syntax")
    ]
    assert _messages(result)[0].startswith("no process in this file is executable")


# -- structure and SpiffWorkflow's semantic checks ---------------------------------------------


def test_a_flow_to_an_unknown_id_is_reported_at_the_flow():
    name = "unknown_flow.bpmn"

    result = parse_definitions([_file(name)])

    # SpiffWorkflow's own report ("perhaps a form has the same ID?", on the flow's source) is
    # replaced by ours, on the flow itself.
    assert _where(result) == [(name, _line(name, 'targetRef="nowhere"'), "flow_2")]
    assert _messages(result) == [
        "sequence flow targetRef 'nowhere' is not an element of this process"
    ]


def test_spiffworkflow_semantic_problems_get_the_line_it_leaves_empty():
    name = "gateway_import.bpmn"
    content = (
        (DATA / name)
        .read_text()
        .replace(' default="flow_no"', "")
        .replace(
            "__import__('os').system('id') == 0</bpmn:conditionExpression>",
            "urgent</bpmn:conditionExpression>",
        )
    )

    result = parse_definitions([_file(name, content.encode())])

    assert _where(result) == [(name, _line(name, 'id="flow_no"'), "flow_no")]
    assert _messages(result) == ["Non-default exclusive outgoing sequence flow without condition"]


def test_a_property_without_value_is_a_problem_not_a_crash():
    name = "property_novalue.bpmn"

    result = parse_definitions([_file(name)])

    assert _where(result) == [
        (name, _line(name, '<spiffworkflow:property name="formKey" />'), "register")
    ]
    assert _messages(result) == [
        "property 'formKey' has no value attribute (SpiffWorkflow cannot read it; "
        'write value="" for an empty value)'
    ]
    # The rest of the file was still parsed.
    [task] = result.processes["property_novalue"].user_tasks
    assert (task.form_key, task.deadline_rule) == (None, "register_3wd")


def test_a_user_task_without_lane_or_role_is_reported():
    name = "unknown_flow.bpmn"
    content = (DATA / name).read_bytes().replace(b'targetRef="nowhere"', b'targetRef="end"')

    result = parse_definitions([_file(name, content)])

    assert _where(result) == [(name, _line(name, 'id="review"'), "review")]
    assert _messages(result) == [
        "the task has no role: put it in a lane named after a role, or set its property 'role'"
    ]


def test_a_role_property_is_enough_without_a_lane():
    name = "unknown_flow.bpmn"
    content = (
        (DATA / name)
        .read_bytes()
        .replace(b'targetRef="nowhere"', b'targetRef="end"')
        .replace(
            b'<bpmn:userTask id="review" name="Review">',
            b'<bpmn:userTask id="review" name="Review"><bpmn:extensionElements>'
            b'<spiffworkflow:properties xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core">'
            b'<spiffworkflow:property name="role" value="psychologist" />'
            b"</spiffworkflow:properties></bpmn:extensionElements>",
        )
    )

    result = parse_definitions([_file(name, content)])

    assert result.problems == []
    [task] = result.processes["unknown_flow"].user_tasks
    assert (task.lane, task.role) == (None, "psychologist")


# -- the lint: every piece of code compiled under the sandbox -----------------------------------


def test_a_script_syntax_error_names_the_task_and_the_script_line():
    name = "script_syntax.bpmn"

    result = parse_definitions([_file(name)])

    assert _where(result) == [(name, _line(name, 'id="check_documents"'), "check_documents")]
    assert _messages(result)[0].startswith("script: line 3 of the script: ")


def test_a_gateway_condition_importing_os_is_refused():
    name = "gateway_import.bpmn"

    result = parse_definitions([_file(name)])

    assert _where(result) == [(name, _line(name, 'id="flow_yes"'), "flow_yes")]
    message = _messages(result)[0]
    assert message.startswith("condition of the flow from 'decide' to 'end_urgent': line 1")
    assert "__import__" in message


def test_timer_expressions_are_compiled_quoted_and_checked():
    name = "timers.bpmn"

    result = parse_definitions([_file(name)])

    assert _where(result) == [
        (name, _line(name, 'id="wait_escape"'), "wait_escape"),
        (name, _line(name, 'id="answer_late"'), "answer_late"),
        # Behind an event-based gateway: reported on the catch event, not on the gateway.
        (name, _line(name, 'id="wait_bad_duration"'), "wait_bad_duration"),
    ]
    escape, unquoted, bad = _messages(result)
    assert escape.startswith("timer expression: line 1 of the expression: ")
    assert "__subclasses__" in escape
    assert unquoted == (
        "timer expression PT1H is not quoted: timer expressions are Python, write 'PT1H' in quotes"
    )
    assert bad == "timer value 'P3X' is not valid ISO 8601 for this timer: Invalid duration"


def test_dmn_cells_and_outputs_are_compiled_as_the_dmn_engine_runs_them():
    name = "dmn_escape.dmn"

    result = parse_definitions([_file(name)])

    assert _where(result) == [
        (name, _line(name, 'id="cell_medium_district"'), "cell_medium_district"),
        (name, _line(name, 'id="out_low"'), "out_low"),
    ]
    cell, output = _messages(result)
    assert cell.startswith("rule 2, column 'District': line 1 of the expression: ")
    assert "__subclasses__" in cell
    assert output.startswith("rule 3, output 'risk': line 1 of the expression: ")
    assert "__mro__" in output


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("&gt;= 10", None),  # appended to the input: score>= 10
        ("3 &lt; ? &lt; 10", None),  # "?" stands for the input
        ("-", None),  # any value
        ("'a', 'b'", None),  # compared with ==
        ("&gt;&gt;&gt; 1", "is neither a value nor a comparison"),
        ("score.__dict__", "__dict__"),
        ("? == __import__('os')", "__import__"),
    ],
)
def test_each_kind_of_dmn_cell(cell, problem):
    content = (
        (DATA / "risk_level.dmn")
        .read_text()
        .replace("<text>&gt;= 10</text>", f"<text>{cell}</text>")
    )

    result = parse_definitions([SourceFile("risk.dmn", content.encode())])

    if problem is None:
        assert result.problems == []
    else:
        assert _where(result) == [
            ("risk.dmn", _line("risk_level.dmn", 'id="cell_high_score"'), "cell_high_score")
        ]
        assert problem in _messages(result)[0]


def test_a_dmn_input_expression_is_compiled_once_for_its_column():
    content = (
        (DATA / "risk_level.dmn").read_text().replace("<text>score</text>", "<text>score +</text>")
    )

    result = parse_definitions([SourceFile("risk.dmn", content.encode())])

    assert _where(result) == [
        ("risk.dmn", _line("risk_level.dmn", 'id="input_score"'), "input_score")
    ]
    assert _messages(result)[0].startswith("input column 'Score': line 1 of the expression: ")


def test_all_problems_of_a_file_are_reported_together():
    name = "several_defects.bpmn"

    result = parse_definitions([_file(name)])

    collect = _line(name, 'id="collect"')
    assert _where(result) == [
        (name, collect, "collect"),
        (name, collect, "collect"),
        (name, collect, "collect"),
        (name, _line(name, '<spiffworkflow:property name="clauses" />'), "collect"),
        (name, _line(name, 'id="collect_late"'), "collect_late"),
        (name, _line(name, 'id="count"'), "count"),
        (name, _line(name, 'id="flow_walk"'), "flow_walk"),
        (name, _line(name, 'id="second_flow"'), "second_flow"),
    ]
    messages = _messages(result)
    assert messages[0].startswith("multi-instance cardinality: line 1 of the expression: ")
    assert (
        messages[1] == 'preScript: line 1 of the script: calling "open" is not allowed in scripts'
    )
    assert messages[2].startswith("the task has no role")
    assert messages[3].startswith("property 'clauses' has no value attribute")
    assert messages[4].startswith("timer expression P10D is not quoted")
    assert messages[5].startswith("script: line 2 of the script: ")
    assert messages[6].startswith("condition of the flow from 'route' to 'end': line 1")
    assert messages[7] == "sequence flow targetRef 'collect' is not an element of this process"
