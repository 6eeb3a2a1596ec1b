# ruff: noqa: F811 - the fixtures imported from tests/web/casework.py are parameters
"""The case file pages on SQLite and PostgreSQL: the child and people (IIN masked), uploads
(limits, real types, hashes), downloads, escaped comments, access by district, the timeline
and the diagram's data."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
from sqlalchemy import func, select

from engine import cases, documents
from engine.db import unit_of_work
from engine.errors import ValidationFailed
from engine.identity import actor_for, get_user
from engine.models.cases import CaseDocument
from tests.factories import VALID_CHILD
from tests.web.casework import (  # noqa: F401 - fixtures
    GIRL_IIN,
    api,
    api_app,
    api_client,
    api_world,
    db_sessions,
)

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200
TOKEN = "page-csrf-token"


def browser(api_app, db_sessions, username):
    client = api_app.test_client()
    with unit_of_work(db_sessions) as s:
        user = get_user(s, username)
        user.language = "en"
        user_id = user.id
    with client.session_transaction() as session:
        session["user_id"] = user_id
        session["csrf_token"] = TOKEN
    return client


def post(client, path, data=None, **kw):
    return client.post(path, data={"csrf_token": TOKEN, **(data or {})}, **kw)


def open_case(db_sessions, clock, username="aigul", **kw):
    with unit_of_work(db_sessions) as s:
        actor = actor_for(get_user(s, username))
        name = kw.pop("child_name", "Аружан")
        return cases.create_case(s, actor=actor, child_name=name, clock=clock, **kw)


def documents_of(db_sessions, case_id):
    with unit_of_work(db_sessions) as s:
        return s.scalars(select(CaseDocument).where(CaseDocument.case_id == case_id)).all()


def test_the_page_shows_the_child_masked_and_escapes_markup(api_app, db_sessions, clock):
    case = open_case(
        db_sessions, clock, child_name="<b>Аружан</b><script>alert(1)</script>", child_iin=GIRL_IIN
    )
    client = browser(api_app, db_sessions, "aigul")
    added = post(
        client,
        f"/cases/{case.id}/comments",
        {"body": '<img src=x onerror="alert(2)"> мать не отвечает'},
    )
    assert added.status_code == 302
    person = post(
        client,
        f"/cases/{case.id}/people",
        {"role": "mother", "full_name": "<i>Айгерім</i>", "iin": GIRL_IIN},
    )
    assert person.status_code == 302
    page = client.get(f"/cases/{case.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert GIRL_IIN not in html and "190515*****6" in html
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=" in html
    assert "<i>Айгерім" not in html and "&lt;i&gt;Айгерім" in html
    assert "2019" in html  # the birth date the IIN gave
    listing = client.get("/cases").get_data(as_text=True)
    assert case.number in listing and GIRL_IIN not in listing
    assert "&lt;b&gt;Аружан" in listing


def test_a_wrong_iin_is_refused_on_the_page_and_nothing_is_created(api_app, db_sessions):
    client = browser(api_app, db_sessions, "aigul")
    refused = post(client, "/cases", {"child_name": "Аружан", "child_iin": "190515600017"})
    assert refused.status_code == 422
    assert "check digit" in refused.get_data(as_text=True)
    contradicted = post(
        client,
        "/cases",
        {"child_name": "Аружан", "child_iin": GIRL_IIN, "child_sex": "male"},
    )
    assert contradicted.status_code == 422
    assert "the IIN says the child is female" in contradicted.get_data(as_text=True)
    with unit_of_work(db_sessions) as s:
        assert cases.list_cases(s, actor=actor_for(get_user(s, "head"))) == []
    opened = post(client, "/cases", {"child_name": "Аружан", "child_iin": GIRL_IIN})
    assert opened.status_code == 302 and "/cases/" in opened.headers["Location"]


def test_upload_stores_hash_size_type_and_downloads_as_an_attachment(api_app, db_sessions, clock):
    case = open_case(db_sessions, clock)
    client = browser(api_app, db_sessions, "erzhan")
    sent = post(
        client,
        f"/cases/{case.id}/documents",
        {"file": (io.BytesIO(PDF), "заявление матери.pdf")},
        content_type="multipart/form-data",
    )
    assert sent.status_code == 302, sent.get_data(as_text=True)
    [doc] = documents_of(db_sessions, case.id)
    assert (doc.content_type, doc.size) == ("application/pdf", len(PDF))
    assert doc.sha256 == hashlib.sha256(PDF).hexdigest()
    got = client.get(f"/cases/{case.id}/documents/{doc.id}")
    assert got.status_code == 200 and got.data == PDF
    assert got.headers["Content-Type"] == "application/pdf"
    assert got.headers["Content-Disposition"].startswith("attachment")
    assert "filename*=UTF-8''" in got.headers["Content-Disposition"]
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in got.headers["Content-Security-Policy"]
    # Someone of another district cannot read it.
    other = browser(api_app, db_sessions, "rudny_spec")
    assert other.get(f"/cases/{case.id}/documents/{doc.id}").status_code == 403
    assert other.get(f"/cases/{case.id}").status_code == 403


def test_oversized_disguised_or_misnamed_uploads_are_refused(api_app, db_sessions, clock):
    case = open_case(db_sessions, clock)
    client = browser(api_app, db_sessions, "aigul")

    def upload(content, name):
        with io.BytesIO(content) as stream:
            response = post(
                client,
                f"/cases/{case.id}/documents",
                {"file": (stream, name)},
                content_type="multipart/form-data",
            )
        response.close()
        return response

    exe = upload(EXE, "справка.pdf")
    assert exe.status_code == 422
    assert "a Windows program" in exe.get_data(as_text=True)
    # The page's limit is the app's (here 64 KB, so that the test's upload stays in memory).
    api_app.config["QORGAU_MAX_UPLOAD_BYTES"] = 64 * 1024
    big = upload(b"%PDF-1.4\n" + b"0" * (64 * 1024), "big.pdf")
    assert big.status_code == 422 and "larger than" in big.get_data(as_text=True)
    misnamed = upload(PNG, "scan.pdf")
    assert misnamed.status_code == 422 and "does not match" in misnamed.get_data(as_text=True)
    html_file = upload(b"<html><script>alert(1)</script></html>", "page.pdf")
    assert html_file.status_code == 422
    empty = upload(b"", "empty.pdf")
    assert empty.status_code == 422
    # A ZIP that is not a Word document.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.exe", EXE)
    assert upload(buffer.getvalue(), "letter.docx").status_code == 422
    assert documents_of(db_sessions, case.id) == []
    # A real (minimal) Word document passes.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    assert upload(buffer.getvalue(), "letter.docx").status_code == 302


def test_the_auditor_reads_but_does_not_write(api_app, db_sessions, clock):
    case = open_case(db_sessions, clock)
    client = browser(api_app, db_sessions, "auditor")
    page = client.get(f"/cases/{case.id}")
    assert page.status_code == 200
    assert f'action="/cases/{case.id}/comments"' not in page.get_data(as_text=True)
    assert post(client, f"/cases/{case.id}/comments", {"body": "x"}).status_code == 403
    with unit_of_work(db_sessions) as s:
        assert cases.case_comments(s, case_id=case.id, actor=actor_for(get_user(s, "head"))) == []


def test_timeline_and_diagram_follow_the_procedure(api, api_app, db_sessions, clock):
    case = open_case(db_sessions, clock, child_iin=GIRL_IIN)
    client = browser(api_app, db_sessions, "aigul")
    started = post(client, f"/cases/{case.id}/procedures", {"process_key": "test_intake"})
    assert started.status_code == 302
    [run] = api("aigul").get(f"/cases/{case.id}").json["procedures"]
    [task] = api("aigul").get("/inbox").json["tasks"]
    assert (
        api("aigul").post(f"/tasks/{task['id']}/complete", {"data": VALID_CHILD}).status_code == 200
    )

    diagram = client.get(f"/procedures/{run['instance_id']}/diagram.json")
    assert diagram.status_code == 200
    body = diagram.json
    assert 'id="test_intake"' in body["xml"] and "BPMNDiagram" in body["xml"]
    assert (body["completed"], body["active"], body["failed"]) == (
        ["register"],
        ["legal_check"],
        [],
    )
    other = browser(api_app, db_sessions, "rudny_spec")
    assert other.get(f"/procedures/{run['instance_id']}/diagram.json").status_code == 403

    html = client.get(f"/cases/{case.id}").get_data(as_text=True)
    for action in ("case.created", "case.procedure_started", "process.started", "task.completed"):
        assert f'title="{action}"' in html, action
    # ... named in the reader's language (this user reads English).
    assert ">procedure started<" in html and ">task done<" in html
    assert f'data-src="/procedures/{run["instance_id"]}/diagram.json"' in html
    assert "bpmn-viewer.production.min.js" in html and "<script>" not in html


def test_the_viewer_is_served_from_node_modules_and_nothing_else(api_app, db_sessions):
    client = browser(api_app, db_sessions, "aigul")
    js = client.get("/vendor/bpmn-js/bpmn-viewer.production.min.js")
    assert js.status_code == 200 and b"BpmnJS" in js.data[:5000] + js.data[-5000:]
    js.close()
    css = client.get("/vendor/bpmn-js/assets/bpmn-js.css")
    assert css.status_code == 200
    css.close()
    for path in ("../package.json", "bpmn-modeler.development.js", "../../../pyproject.toml"):
        assert client.get(f"/vendor/bpmn-js/{path}").status_code == 404, path


def test_case_numbers_count_per_year(db_sessions, clock, api_world):
    first = open_case(db_sessions, clock)
    second = open_case(db_sessions, clock, username="erzhan")
    assert (first.number, second.number) == ("KST-2026-000001", "KST-2026-000002")
    with unit_of_work(db_sessions) as s:
        from engine.models.cases import CaseCounter

        assert s.scalar(select(func.max(CaseCounter.last))) == 2


def test_the_engine_refuses_a_file_over_10_mb(db_sessions, clock, api_world):
    case = open_case(db_sessions, clock)
    content = b"%PDF-1.4\n" + b"0" * (documents.MAX_DOCUMENT_BYTES - 8)
    assert len(content) == documents.MAX_DOCUMENT_BYTES + 1
    with unit_of_work(db_sessions) as s:
        actor = actor_for(get_user(s, "aigul"))
        with pytest.raises(ValidationFailed, match="larger than 10 MB"):
            documents.upload_document(
                s, case_id=case.id, actor=actor, file_name="big.pdf", content=content, clock=clock
            )
        # Exactly at the limit passes.
        view = documents.upload_document(
            s, case_id=case.id, actor=actor, file_name="ok.pdf", content=content[:-1], clock=clock
        )
        assert view.size == documents.MAX_DOCUMENT_BYTES
