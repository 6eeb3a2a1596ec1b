"""Uploaded XML never reaches the host: no entities, no DTDs, no huge files."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import DeployError, Problem
from engine.spiff.parsing import SourceFile, parse_definitions
from engine.spiff.xmlsafe import MAX_BYTES, parse_untrusted

HOSTILE = Path(__file__).resolve().parent.parent / "data" / "bpmn" / "hostile"
PARSING = Path(__file__).resolve().parent.parent / "data" / "bpmn" / "parsing"
DOCTYPE = "DOCTYPE declarations are not allowed (entities can read files or exhaust memory)"


def _refusal(content: bytes, name: str = "upload.bpmn") -> list[Problem]:
    with pytest.raises(DeployError) as info:
        parse_untrusted(content, name)
    return info.value.problems


@pytest.mark.parametrize(
    "name",
    ["xxe_file.bpmn", "xxe_parameter.bpmn", "billion_laughs.bpmn", "doctype_plain.bpmn"],
)
def test_any_doctype_is_refused_where_it_is_declared(name):
    content = (HOSTILE / name).read_bytes()

    assert _refusal(content, name) == [Problem(name, 2, None, DOCTYPE)]


def test_external_entity_content_never_appears_in_a_problem():
    hostname = Path("/etc/hostname")
    secret = hostname.read_text().strip() if hostname.exists() else None

    result = parse_definitions([SourceFile("x.bpmn", (HOSTILE / "xxe_file.bpmn").read_bytes())])

    assert result.processes == {}
    assert [p.message for p in result.problems] == [DOCTYPE]
    if secret:
        assert all(secret not in p.message for p in result.problems)


def test_a_doctype_hidden_behind_a_prolog_comment_is_still_refused():
    # The byte-level search stops at the first "<name"; the parsed tree is checked too.
    content = b'<?xml version="1.0"?>\n<!-- <a> -->\n<!DOCTYPE x>\n<x/>'

    assert _refusal(content) == [Problem("upload.bpmn", None, None, DOCTYPE)]


def test_doctype_text_inside_the_document_is_not_a_doctype():
    content = b"<x><![CDATA[<!DOCTYPE html><p>template</p>]]></x>"

    tree = parse_untrusted(content, "upload.bpmn")

    assert tree.getroot().text == "<!DOCTYPE html><p>template</p>"


def test_a_file_over_the_cap_is_refused_before_parsing():
    content = b"<x>" + b" " * MAX_BYTES + b"</x>"

    problems = _refusal(content, "big.bpmn")

    assert len(problems) == 1
    assert (problems[0].file, problems[0].line, problems[0].element_id) == ("big.bpmn", None, None)
    assert (
        f"the file is {len(content)} bytes; the limit is {MAX_BYTES} bytes" in problems[0].message
    )


def test_a_file_of_exactly_the_cap_is_parsed():
    head, tail = b"<x><!--", b"--></x>"
    content = head + b"a" * (MAX_BYTES - len(head) - len(tail)) + tail

    assert len(content) == MAX_BYTES
    assert parse_untrusted(content, "edge.bpmn").getroot().tag == "x"


def test_malformed_xml_reports_the_line():
    content = (HOSTILE / "malformed.bpmn").read_bytes()

    problems = _refusal(content, "malformed.bpmn")

    assert [(p.file, p.line, p.element_id) for p in problems] == [("malformed.bpmn", 5, None)]
    assert problems[0].message.startswith(
        "malformed XML: Opening and ending tag mismatch: b line 5"
    )


def test_an_empty_file_is_malformed():
    assert _refusal(b"") == [Problem("upload.bpmn", 1, None, "malformed XML: Document is empty")]


def test_utf16_is_refused():
    content = '<?xml version="1.0" encoding="UTF-16"?><x/>'.encode("utf-16")

    assert [p.line for p in _refusal(content)] == [1]


def test_an_encoding_declaration_cannot_change_how_bytes_are_read():
    # Decoding is always UTF-8, so the byte-level DOCTYPE search cannot be dodged by UTF-7 etc.
    content = '<?xml version="1.0" encoding="ISO-8859-1"?><x>Қорғау</x>'.encode()

    assert parse_untrusted(content, "kk.bpmn").getroot().text == "Қорғау"


def test_hostile_files_do_not_stop_the_others_from_being_checked():
    files = [
        SourceFile(name, (HOSTILE / name).read_bytes())
        for name in ("billion_laughs.bpmn", "malformed.bpmn")
    ]
    files.append(SourceFile("script_syntax.bpmn", (PARSING / "script_syntax.bpmn").read_bytes()))

    result = parse_definitions(files)

    assert [(p.file, p.line, p.element_id) for p in result.problems] == [
        ("billion_laughs.bpmn", 2, None),
        ("malformed.bpmn", 5, None),
        ("script_syntax.bpmn", 7, "check_documents"),
    ]
