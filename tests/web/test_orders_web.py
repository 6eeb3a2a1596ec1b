"""The orders' pages: the head's signing queue (one, a selection, return), the PDF, the
public verification page, and the ``qorgau keys`` / ``qorgau orders verify`` commands."""

from __future__ import annotations

from io import BytesIO

import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from engine import definitions, orders, signing
from engine.config import BPMN_DIR, FORMS_DIR
from engine.db import unit_of_work
from engine.identity import SYSTEM
from tests.orders_support import CA_PASS, CHILD, PASSPHRASES
from tests.web.conftest import Browser, make_app
from web.cli import main


@pytest.fixture
def keys(tmp_path):
    folder = tmp_path / "keys"
    signing.create_ca(passphrase=CA_PASS, folder=folder)
    for username in ("head", "deputy"):
        signing.issue_signer_key(
            username=username,
            full_name=username.title(),
            ca_passphrase=CA_PASS,
            passphrase=PASSPHRASES[username],
            folder=folder,
        )
    return folder


@pytest.fixture
def oapp(web_url, clock, tmp_path, keys):
    app = make_app(web_url, clock, tmp_path, ORDERS_KEYS_DIR=str(keys))
    sessions = app.extensions["qorgau.sessions"]
    bundle = definitions.read_paths([BPMN_DIR / "head_order.bpmn"], forms_dir=FORMS_DIR)
    with unit_of_work(sessions) as s:
        definitions.deploy(s, bundle, actor=SYSTEM, now=clock.now())
    yield app
    app.extensions["qorgau.engine"].dispose()


def queued(app, people, clock, count=1):
    """Orders drafted by aigul and approved by maria, through the engine's services."""
    sessions = app.extensions["qorgau.sessions"]
    ids = []
    for _ in range(count):
        with unit_of_work(sessions) as s:
            view = orders.start_order(
                s,
                actor=people["aigul"],
                template="guardianship.establish",
                data=CHILD,
                clock=clock,
            )
            orders.submit_order(s, order_id=view.id, actor=people["aigul"], clock=clock)
            orders.review_order(
                s, order_id=view.id, actor=people["maria"], decision="approve", clock=clock
            )
        ids.append(view.id)
    return ids


def login(app, username):
    b = Browser(app.test_client())
    assert b.sign_in(username).status_code == 302
    return b


def test_the_queue_is_the_heads_and_shows_history_and_preview(oapp, people, clock):
    [order_id] = queued(oapp, people, clock)
    head = login(oapp, "head")
    page = head.get("/orders/queue").get_data(as_text=True)
    assert "Кәмелетке толмаған Айғаным" in page
    # The history names each step in the reader's language (Kazakh by default).
    assert "заңгер келісті" in page and "құқықтық сараптамаға жіберілді" in page
    preview = head.client.get(f"/orders/{order_id}/pdf")
    assert preview.mimetype == "application/pdf"
    text = PdfReader(BytesIO(preview.data)).pages[0].extract_text()
    assert "ЖОБА" in text and "№ ____" in text
    for outsider in ("aigul", "maria", "deputy"):  # the deputy holds no delegation
        assert login(oapp, outsider).get("/orders/queue").status_code == 403


def test_sign_a_selection_with_one_passphrase_then_verify_publicly(oapp, people, clock):
    ids = queued(oapp, people, clock, count=3)
    head = login(oapp, "head")
    head.get("/orders/queue")
    wrong = head.post("/orders/sign", {"order_id": ids[:2], "passphrase": "not-the-one"})
    assert wrong.status_code == 422 and "passphrase" in wrong.get_data(as_text=True)
    done = head.post("/orders/sign", {"order_id": ids[:2], "passphrase": PASSPHRASES["head"]})
    assert done.status_code == 302
    page = head.get("/orders/queue").get_data(as_text=True)
    assert "№ 1, № 2" in page
    sessions = oapp.extensions["qorgau.sessions"]
    with unit_of_work(sessions) as s:
        assert [orders.get_order(s, order_id=i).status for i in ids] == [
            "registered",
            "registered",
            "signing",
        ]
    signed = head.client.get(f"/orders/{ids[0]}/pdf").data
    # Anyone, signed in or not, may verify.
    public = Browser(oapp.test_client())
    public.get("/verify")
    ok = public.post(
        "/verify", {"pdf": (BytesIO(signed), "order.pdf")}, content_type="multipart/form-data"
    )
    body = ok.get_data(as_text=True)
    assert ok.status_code == 200, body
    assert "Жарамды:" in body and "№ 1" in body and "Head" in body  # "Valid:", in Kazakh
    changed = bytearray(signed)
    changed[signed.index(b"stream", 2000) + 40] ^= 0x01
    bad = public.post(
        "/verify",
        {"pdf": (BytesIO(bytes(changed)), "order.pdf")},
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422
    assert "changed after signing" in bad.get_data(as_text=True)


def test_the_head_returns_with_comments(oapp, people, clock):
    [order_id] = queued(oapp, people, clock)
    head = login(oapp, "head")
    head.get("/orders/queue")
    response = head.post(f"/orders/{order_id}/return", {"comments": "Негізді нақтылаңыз."})
    assert response.status_code == 302
    with unit_of_work(oapp.extensions["qorgau.sessions"]) as s:
        view = orders.get_order(s, order_id=order_id)
    assert view.status == "draft" and view.steps[-1].comments == "Негізді нақтылаңыз."


def test_the_author_drafts_edits_and_submits_in_the_browser(oapp, people, clock):
    author = login(oapp, "aigul")
    author.get("/orders/new?template=guardianship.establish")
    created = author.post("/orders/new", {"template": "guardianship.establish", **CHILD})
    assert created.status_code == 302
    order_url = created.headers["Location"]
    page = author.get(order_url).get_data(as_text=True)
    assert "preamble_kk" in page
    form = {
        "title_kk": "Атауы",
        "title_ru": "Заголовок",
        "preamble_kk": "Негіз",
        "preamble_ru": "Основание",
        "points_kk": "Бір.\nЕкі.",
        "points_ru": "Один.\nДва.",
        "then": "submit",
    }
    assert author.post(f"{order_url}/edit", form).status_code == 302
    lawyer = login(oapp, "maria")
    lawyer.get(order_url)
    back = lawyer.post(f"{order_url}/review", {"decision": "return"})
    assert back.status_code == 422  # comments are required to return
    assert lawyer.post(f"{order_url}/review", {"decision": "approve"}).status_code == 302


def test_the_commands_manage_keys_and_verify(oapp, people, clock, tmp_path, monkeypatch):
    runner = CliRunner()
    folder = tmp_path / "cli-keys"
    ca_file, head_file = tmp_path / "ca.txt", tmp_path / "head.txt"
    ca_file.write_text("cli-ca-passphrase")
    head_file.write_text("cli-head-passphrase")
    monkeypatch.setenv("QORGAU_DATABASE_URL", oapp.config["DATABASE_URL"])
    result = runner.invoke(
        main, ["keys", "init-ca", "--keys-dir", str(folder), "--passphrase-file", str(ca_file)]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        main,
        [
            "keys",
            "issue",
            "head",
            "--keys-dir",
            str(folder),
            "--ca-passphrase-file",
            str(ca_file),
            "--passphrase-file",
            str(head_file),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "head" in runner.invoke(main, ["keys", "list", "--keys-dir", str(folder)]).output
    assert b"ENCRYPTED" in (folder / "signers" / "head.key.pem").read_bytes()
    [order_id] = queued(oapp, people, clock)
    with unit_of_work(oapp.extensions["qorgau.sessions"]) as s:
        orders.sign_orders(
            s,
            order_ids=[order_id],
            actor=people["head"],
            signer=signing.open_signer("head", "cli-head-passphrase", folder),
            clock=clock,
        )
        pdf = orders.order_pdf(s, order_id=order_id)
    path = tmp_path / "order.pdf"
    path.write_bytes(pdf)
    ok = runner.invoke(main, ["orders", "verify", str(path), "--keys-dir", str(folder)])
    assert ok.exit_code == 0, ok.output
    assert "VALID" in ok.output and "№ 1" in ok.output
    # The same file against another CA: not the Department's, exit 1 with the reason.
    foreign = runner.invoke(
        main, ["orders", "verify", str(path), "--keys-dir", str(oapp.config["ORDERS_KEYS_DIR"])]
    )
    assert foreign.exit_code == 1
    assert "not issued by the Department CA" in foreign.output
