"""Administration pages: users (create, roles, district, language, deactivate), districts."""

from __future__ import annotations

from sqlalchemy import select

from engine.db import unit_of_work
from engine.models import AuditEvent, District, User
from tests.web.conftest import Browser, sign_in_to


def test_admin_creates_a_user_who_signs_in_in_their_language(app, sessions):
    admin = sign_in_to(app, "admin")
    admin.get("/admin/users")
    refused = admin.post(
        "/admin/users",
        {"username": "bad name!", "full_name": "", "password": "short", "roles": ["lawyer"]},
    )
    assert refused.status_code == 422
    response = admin.post(
        "/admin/users",
        {
            "username": "zhanna",
            "full_name": "Жанна Серікова",
            "password": "a long enough password",
            "roles": ["specialist", "psychologist"],
            "district": "rudny_city",
            "language": "ru",
        },
    )
    assert response.status_code == 302
    page = admin.get("/admin/users").get_data(as_text=True)
    assert "Жанна Серікова" in page and "psychologist, specialist" in page
    zhanna = Browser(app.test_client())
    assert zhanna.sign_in("zhanna", "a long enough password").status_code == 302
    assert "Входящие задачи" in zhanna.get("/inbox").get_data(as_text=True)
    with unit_of_work(sessions) as s:
        actions = [e.action for e in s.scalars(select(AuditEvent))]
    assert "user.created" in actions


def test_admin_changes_roles_and_deactivates(app, sessions):
    admin = sign_in_to(app, "admin")
    erzhan = sign_in_to(app, "erzhan")
    admin.get("/admin/users/erzhan")
    assert (
        admin.post(
            "/admin/users/erzhan",
            {"roles": ["lawyer"], "district": "", "language": "en", "is_active": "1"},
        ).status_code
        == 302
    )
    with unit_of_work(sessions) as s:
        user = s.scalar(select(User).where(User.username == "erzhan"))
        assert {r.role_code for r in user.roles} == {"lawyer"} and user.district_id is None
    # No roles: refused, nothing changed.
    assert admin.post("/admin/users/erzhan", {"language": "en"}).status_code == 422
    admin.post("/admin/users/erzhan", {"roles": ["lawyer"], "language": "en"})  # inactive
    assert erzhan.get("/inbox").status_code == 302  # signed out at once
    # An administrator cannot lock themselves out.
    assert (
        admin.post("/admin/users/admin", {"roles": ["admin"], "language": "kk"}).status_code == 422
    )
    with unit_of_work(sessions) as s:
        last = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "user.updated").order_by(AuditEvent.id)
        ).all()[-1]
        assert last.actor == "admin" and last.detail["after"]["active"] is False


def test_admin_adds_a_district_and_lists_roles(app, sessions):
    admin = sign_in_to(app, "admin")
    assert "Басшының орынбасары" in admin.get("/admin/roles").get_data(as_text=True)
    admin.get("/admin/districts")
    assert admin.post("/admin/districts", {"code": "bad code"}).status_code == 422
    response = admin.post(
        "/admin/districts",
        {
            "code": "auliekol_district",
            "name_kk": "Әулиекөл ауданы",
            "name_ru": "Аулиекольский район",
            "name_en": "Auliekol district",
        },
    )
    assert response.status_code == 302
    with unit_of_work(sessions) as s:
        assert s.scalar(select(District.name_ru).where(District.code == "auliekol_district"))
