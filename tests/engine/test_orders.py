"""The head's orders (Reg 7, 18.9, 18.10): the flow through head_order, numbering under
concurrency, four eyes, delegation, the bilingual PDF, signatures and their verification."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from io import BytesIO

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from engine import delegations, instances, orders, signing
from engine.db import unit_of_work
from engine.errors import Forbidden, InvalidTransition, ValidationFailed
from engine.models import AuditEvent
from engine.order_pdf import Registration, render_order
from engine.order_templates import TEMPLATES, fill
from tests.orders_support import CHILD, OrderWorld

KAZAKH_LETTERS = "әғқңөұүһі"


@pytest.fixture
def world(sqlite_sessions, clock, tmp_path):
    return OrderWorld.create(sqlite_sessions, clock, tmp_path / "keys")


def _ready(world, instance_id):
    with unit_of_work(world.sessions) as s:
        view = instances.get_instance(s, instance_id=instance_id)
        return [t.bpmn_id for t in view.ready_tasks], view.status


def test_the_order_drives_its_head_order_process_to_the_end(world):
    order = world.draft()
    assert order.status == "draft" and order.template_code == "guardianship.establish"
    assert _ready(world, order.instance_id) == (["draft"], "running")
    with unit_of_work(world.sessions) as s:
        orders.submit_order(s, order_id=order.id, actor=world.people["aigul"], clock=world.clock)
    assert _ready(world, order.instance_id)[0] == ["legal_review"]
    with unit_of_work(world.sessions) as s:
        orders.review_order(
            s, order_id=order.id, actor=world.people["maria"], decision="approve", clock=world.clock
        )
    assert _ready(world, order.instance_id)[0] == ["sign"]
    [signed] = world.sign([order.id])
    assert (signed.status, signed.number, signed.signed_on) == ("registered", "1", date(2026, 3, 2))
    assert _ready(world, order.instance_id)[0] == ["publish"]
    with unit_of_work(world.sessions) as s:
        data = instances.instance_data(s, instance_id=order.instance_id)
        assert (data["order_number"], data["order_date"]) == ("1", "2026-03-02")
        assert data["sign_decision"] == "sign"
        assert data["order_text_kk"].startswith("Кәмелетке толмаған Айғаным")
        done = orders.notify_order(
            s,
            order_id=order.id,
            actor=world.people["aigul"],
            notified_to="Ісмағұлова Г. Һ.",
            clock=world.clock,
        )
    assert done.status == "notified"
    assert _ready(world, order.instance_id) == ([], "completed")
    assert [st.action for st in done.steps] == [
        "drafted",
        "submitted",
        "approved",
        "signed",
        "notified",
    ]


def test_returns_by_lawyer_and_head_go_back_to_the_author_who_edits(world):
    order = world.to_queue()
    with unit_of_work(world.sessions) as s:
        back = orders.return_order(
            s,
            order_id=order.id,
            actor=world.people["head"],
            comments="Басқа негіз керек.",
            clock=world.clock,
        )
    assert back.status == "draft" and back.steps[-1].comments == "Басқа негіз керек."
    assert _ready(world, order.instance_id)[0] == ["draft"]
    # Only the author edits, and only a draft.
    with pytest.raises(Forbidden), unit_of_work(world.sessions) as s:
        orders.edit_draft(
            s, order_id=order.id, actor=world.people["erzhan"], texts={"kk": {"title": "X"}}
        )
    with unit_of_work(world.sessions) as s:
        edited = orders.edit_draft(
            s,
            order_id=order.id,
            actor=world.people["aigul"],
            texts={"kk": {"title": "Жаңа атауы"}, "ru": {"points": ["Первый.", "Второй."]}},
            clock=world.clock,
        )
        orders.submit_order(s, order_id=order.id, actor=world.people["aigul"], clock=world.clock)
    assert edited.content["kk"]["title"] == "Жаңа атауы"
    assert edited.content["ru"]["points"] == ["Первый.", "Второй."]
    with pytest.raises(ValidationFailed) as caught, unit_of_work(world.sessions) as s:
        orders.review_order(
            s, order_id=order.id, actor=world.people["maria"], decision="return", clock=world.clock
        )
    assert [e.field for e in caught.value.errors] == ["legal_comments"]
    with unit_of_work(world.sessions) as s:
        returned = orders.review_order(
            s,
            order_id=order.id,
            actor=world.people["maria"],
            decision="return",
            comments="Негіз?",
            clock=world.clock,
        )
    assert returned.status == "draft"
    with pytest.raises(InvalidTransition), unit_of_work(world.sessions) as s:
        orders.review_order(
            s,
            order_id=order.id,
            actor=world.people["maria"],
            decision="approve",
            clock=world.clock,
        )


def test_a_template_names_every_missing_field():
    with pytest.raises(ValidationFailed) as caught:
        fill(TEMPLATES["guest_family.placement"], {"child_name": "Ә"})
    assert {e.field for e in caught.value.errors} == {
        "child_iin",
        "institution_name",
        "host_name",
        "host_iin",
        "period_from",
        "period_to",
    }


def test_the_drafter_never_signs(world):
    order = world.to_queue(who="chief")
    with pytest.raises(Forbidden, match="author"):
        world.sign([order.id], who="chief")
    with unit_of_work(world.sessions) as s:
        assert orders.get_order(s, order_id=order.id).status == "signing"
    [signed] = world.sign([order.id], who="head")
    assert signed.signed_by == "head"


def test_only_the_head_or_a_deputy_under_delegation_signs(world):
    order = world.to_queue()
    for outsider in ("aigul", "maria", "deputy"):
        with pytest.raises(Forbidden):
            with unit_of_work(world.sessions) as s:
                orders.sign_orders(
                    s,
                    order_ids=[order.id],
                    actor=world.people[outsider],
                    signer=world.signer("deputy"),
                    clock=world.clock,
                )
    # Somebody else's key is refused even to the head.
    with pytest.raises(Forbidden, match="key belongs"):
        with unit_of_work(world.sessions) as s:
            orders.sign_orders(
                s,
                order_ids=[order.id],
                actor=world.people["head"],
                signer=world.signer("deputy"),
                clock=world.clock,
            )


def test_a_deputy_signs_under_a_current_delegation_and_an_expired_one_refuses(world):
    first, second = world.to_queue(), world.to_queue()
    today = date(2026, 3, 2)
    with unit_of_work(world.sessions) as s:
        with pytest.raises(Forbidden):
            delegations.grant_delegation(
                s,
                actor=world.people["deputy"],
                deputy="deputy",
                starts_on=today,
                ends_on=today,
                now=world.clock.now(),
            )
        granted = delegations.grant_delegation(
            s,
            actor=world.people["head"],
            deputy="deputy",
            starts_on=today - timedelta(days=1),
            ends_on=today,
            now=world.clock.now(),
            reason="іссапар / командировка",
        )
    [signed] = world.sign([first.id], who="deputy")
    assert (signed.signed_by, signed.on_behalf_of) == ("deputy", "head")
    with unit_of_work(world.sessions) as s:
        events = s.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        grant = [e for e in events if e.action == "order.delegation_granted"]
        assert grant and grant[0].detail["delegation_id"] == granted.id
        sign_events = [
            e
            for e in events
            if e.instance_id == first.instance_id
            and e.action == "task.completed"
            and e.detail.get("bpmn_id") == "sign"
        ]
        assert [(e.actor, e.on_behalf_of) for e in sign_events] == [("deputy", "head")]
    world.clock.advance(timedelta(days=1))
    with pytest.raises(Forbidden, match="ended on 02.03.2026"):
        world.sign([second.id], who="deputy")
    with unit_of_work(world.sessions) as s:
        assert orders.get_order(s, order_id=second.id).status == "signing"


def test_numbers_follow_the_register_pattern_and_restart_each_year(world):
    with unit_of_work(world.sessions) as s:
        orders.set_register_pattern(
            s, actor=world.people["admin"], register="core", pattern="{seq}-НҚ"
        )
        with pytest.raises(ValidationFailed):
            orders.set_register_pattern(
                s, actor=world.people["admin"], register="core", pattern="{oops}"
            )
    a, b = world.to_queue(), world.to_queue()
    assert [o.number for o in world.sign([a.id, b.id])] == ["1-НҚ", "2-НҚ"]
    world.clock.advance(timedelta(days=365))
    c = world.to_queue()
    [signed] = world.sign([c.id])
    assert (signed.number, signed.year) == ("1-НҚ", 2027)


def test_a_failed_batch_leaves_no_gap(world):
    a, b = world.to_queue(), world.to_queue(who="chief")
    with pytest.raises(Forbidden):
        world.sign([a.id, b.id], who="chief")  # chief drafted b
    c = world.to_queue()
    assert [o.number for o in world.sign([a.id, c.id])] == ["1", "2"]


def _concurrent_signing(world, count):
    queued = [world.to_queue() for _ in range(count)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def sign(order_id):
        try:
            signer = world.signer("head")
            barrier.wait()
            with unit_of_work(world.sessions) as s:
                orders.sign_orders(
                    s,
                    order_ids=[order_id],
                    actor=world.people["head"],
                    signer=signer,
                    clock=world.clock,
                )
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=sign, args=(o.id,)) for o in queued]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with unit_of_work(world.sessions) as s:
        numbers = sorted(int(orders.get_order(s, order_id=o.id).number) for o in queued)
    assert numbers == list(range(1, count + 1))


def test_twenty_orders_signed_at_once_get_twenty_consecutive_numbers(sessions, clock, tmp_path):
    """Threads on SQLite and on PostgreSQL (the ``sessions`` fixture runs both)."""
    world = OrderWorld.create(sessions, clock, tmp_path / "keys")
    _concurrent_signing(world, 20)


def test_the_pdf_holds_both_languages_with_every_kazakh_letter(world):
    order = world.to_queue()
    [signed] = world.sign([order.id])
    text = "\n".join(p.extract_text() for p in PdfReader(BytesIO(world.pdf(order.id))).pages)
    for needle in (
        "БҰЙРЫҚ",
        "ПРИКАЗ",
        "БҰЙЫРАМЫН:",
        "ПРИКАЗЫВАЮ:",
        "Қостанай қ.",
        "г. Костанай",
        "№ 1",
        "2026 жылғы «02» наурыз",
        "«02» марта 2026 года",
        "Айғаным Өмірбекқызы Құрманова",
        "Гүлнұр Һадиқызы Ісмағұлова",
        "Контроль за исполнением",
        "орындалуын бақылау",
        "Басшы",
        "Руководитель",
    ):
        assert needle in text, needle
    assert text.index("БҰЙРЫҚ") < text.index("ПРИКАЗ")  # Kazakh first
    for letter in KAZAKH_LETTERS + KAZAKH_LETTERS.upper():
        assert letter in text or letter.upper() in text, letter
    assert set(KAZAKH_LETTERS) <= set(text.lower())
    assert signed.pdf_sha256


def test_every_template_renders_in_both_languages():
    data = {
        **CHILD,
        "applicant_name": "Бөкей Ұлан",
        "applicant_iin": "850101400011",
        "refusal_reason_kk": "табыс ең төмен күнкөріс деңгейінен төмен",
        "refusal_reason_ru": "доход ниже прожиточного минимума",
        "centre_name": "Қостанай қаласының бейімдеу орталығы",
        "ground_kk": "қауіп",
        "ground_ru": "угроза",
        "institution_name": "№ 1 балалар үйі",
        "host_name": "Әділ Һ.",
        "host_iin": "850101400011",
        "period_from": "01.06.2026",
        "period_to": "30.06.2026",
        "property_kk": "пәтердің 1/4 үлесі",
        "property_ru": "1/4 доли квартиры",
        "transaction_kk": "сатуға",
        "transaction_ru": "продажу",
        "attorney_name": "Ғалым Ү.",
        "attorney_iin": "850101400011",
        "scope_kk": "соттарда",
        "scope_ru": "в судах",
        "valid_until": "31.12.2026",
    }
    heads = {"order": "БҰЙРЫҚ", "certificate": "АНЫҚТАМА", "power_of_attorney": "СЕНІМХАТ"}
    for code, body in TEMPLATES.items():
        pdf = render_order(
            fill(body, data),
            registration=Registration("core", 2026, 5, "5", date(2026, 3, 2)),
            signer_position=("Басшы", "Руководитель"),
            signer_name="Ә. Сәрсенова",
        )
        text = "\n".join(p.extract_text() for p in PdfReader(BytesIO(pdf)).pages)
        assert heads[body["doc_type"]] in text, code
        assert "№ 5" in text and "г. Костанай" in text, code


# --- verification ---------------------------------------------------------------------------


@pytest.fixture
def signed_order(world):
    order = world.to_queue()
    [signed] = world.sign([order.id])
    return signed, world.pdf(order.id)


def test_a_signed_order_verifies(world, signed_order):
    order, pdf = signed_order
    result = world.verify(pdf)
    assert result.ok, result.problems
    assert (result.number, result.signed_on, result.register_code) == (
        "1",
        date(2026, 3, 2),
        "core",
    )
    assert result.signature.signer == "Әлия Нұрланқызы Сәрсенова"
    assert result.signature.signer_username == "head"
    assert result.signature.signed_at is not None and result.matches_register


def test_one_changed_byte_fails(world, signed_order):
    _, pdf = signed_order
    start = pdf.index(b"stream", 2000) + 40  # inside a signed content stream
    changed = bytearray(pdf)
    changed[start] ^= 0x01
    result = world.verify(bytes(changed))
    assert not result.ok
    assert any("changed after signing" in p for p in result.problems), result.problems


def test_a_copy_re_signed_outside_the_department_ca_fails(world, signed_order, tmp_path):
    order, _ = signed_order
    foreign = tmp_path / "foreign"
    signing.create_ca(passphrase="another-ca-pass", folder=foreign)
    signing.issue_signer_key(
        username="head",
        full_name="Әлия Нұрланқызы Сәрсенова",
        ca_passphrase="another-ca-pass",
        passphrase="forged-pass",
        folder=foreign,
    )
    copy = render_order(
        order.content,
        registration=Registration("core", order.year, order.seq, order.number, order.signed_on),
        signer_position=("Басшы", "Руководитель"),
        signer_name="Әлия Нұрланқызы Сәрсенова",
    )
    forged = signing.open_signer("head", "forged-pass", foreign).sign_pdf(
        copy, reason="№ 1", location="Қостанай"
    )
    result = world.verify(forged)
    assert not result.ok
    assert result.signature.intact and not result.signature.trusted
    assert any("not issued by the Department CA" in p for p in result.problems)


def test_a_genuine_signature_on_bytes_the_register_does_not_hold_fails(world, signed_order):
    order, _ = signed_order
    # The head's own key, but a text that was never registered under this number.
    content = {**order.content, "kk": {**order.content["kk"], "title": "Басқа мәтін"}}
    reg = Registration("core", order.year, order.seq, order.number, order.signed_on)
    other = world.signer("head").sign_pdf(
        render_order(
            content,
            registration=reg,
            signer_position=("Басшы", "Руководитель"),
            signer_name="Ә. Сәрсенова",
        ),
        reason="№ 1",
        location="Қостанай",
    )
    result = world.verify(other)
    assert result.signature.ok and not result.matches_register
    assert result.problems == (
        "the file's bytes differ from the register's record of order № 1 of 02.03.2026",
    )
    unknown = Registration("core", 2026, 99, "99", order.signed_on)
    never = world.signer("head").sign_pdf(
        render_order(
            order.content,
            registration=unknown,
            signer_position=("Басшы", "Руководитель"),
            signer_name="Ә. Сәрсенова",
        ),
        reason="№ 99",
        location="Қостанай",
    )
    assert world.verify(never).problems == ("the register 'core' holds no order 99 of 2026",)


def test_garbage_and_unsigned_files_fail(world):
    assert "not a readable PDF" in world.verify(b"not a pdf").problems[0]
    order = world.draft()
    assert world.verify(world.pdf(order.id)).problems[0] == "the PDF carries no signature"


def test_a_wrong_passphrase_opens_no_key(world):
    with pytest.raises(signing.KeyUnavailable):
        signing.open_signer("head", "wrong-passphrase", world.keys)


def _pdf_text(pdf: bytes) -> str:
    return " ".join(" ".join(p.extract_text().split()) for p in PdfReader(BytesIO(pdf)).pages)


def test_a_signed_order_carries_a_visible_mark_of_its_signature(world):
    # Who signed, with which certificate, when (Kostanay time) and where to check: on the
    # Kazakh and on the Russian page, for a reader of a printed copy.
    order = world.to_queue()
    world.sign([order.id])
    text = _pdf_text(world.pdf(order.id))
    certificate = world.signer("head").certificate
    serial, issuer = certificate.split(", ", 1)
    assert "ЭЛЕКТРОНДЫҚ ЦИФРЛЫҚ ҚОЛТАҢБАМЕН ҚОЛ ҚОЙЫЛДЫ" in text
    assert "ПОДПИСАНО ЭЛЕКТРОННОЙ ЦИФРОВОЙ ПОДПИСЬЮ" in text
    assert "Қол қойған: Әлия Нұрланқызы Сәрсенова" in text
    assert "Подписал: Әлия Нұрланқызы Сәрсенова" in text
    assert text.count(serial) == 2 and issuer in text
    assert "02.03.2026 10:00 (Қостанай уақыты)" in text
    assert "02.03.2026 10:00 (время Костаная)" in text
    assert text.count("/verify") == 2
    # The mark is inside the signed bytes: the order still verifies.
    assert world.verify(world.pdf(order.id)).ok


def test_a_deputys_mark_names_the_head_it_signed_for(world):
    order = world.to_queue()
    head = world.delegate(date(2026, 3, 2), date(2026, 3, 2))
    world.sign([order.id], who="deputy")
    text = _pdf_text(world.pdf(order.id))
    assert f"Қол қойған: Сәкен Дәулетұлы Жүніс ({head} атынан)" in text
    assert f"Подписал: Сәкен Дәулетұлы Жүніс (по поручению: {head})" in text
    assert world.verify(world.pdf(order.id)).ok
