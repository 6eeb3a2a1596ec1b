"""The calendar's admin page and the notifications bell, through the Flask client."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from engine import notifications
from engine.calendar import PACKAGE_CALENDAR
from engine.db import unit_of_work
from engine.models import CalendarOverride, User


def _overrides(sessions):
    with unit_of_work(sessions) as s:
        return [(o.day, o.kind) for o in s.scalars(select(CalendarOverride))]


def test_only_the_admin_sees_the_calendar(signed_in, browser):
    assert signed_in("aigul").get("/admin/calendar").status_code == 403
    assert signed_in("head").get("/admin/calendar").status_code == 403
    assert browser.get("/admin/calendar").status_code == 302  # to the sign-in page
    page = signed_in("admin").get("/admin/calendar")
    assert page.status_code == 200
    assert PACKAGE_CALENDAR.version in page.get_data(as_text=True)


def test_admin_adds_and_removes_an_override(signed_in, sessions):
    admin = signed_in("admin")
    admin.get("/admin/calendar")
    added = admin.post(
        "/admin/calendar",
        {
            "day": "2026-05-26",
            "kind": "holiday",
            "reason": "Kurban Ait 2026, first day",
            "legal_act": "Announcement of the Spiritual Administration (test)",
        },
    )
    assert added.status_code == 302
    assert _overrides(sessions) == [(date(2026, 5, 26), "holiday")]
    page = admin.get("/admin/calendar").get_data(as_text=True)
    assert "Kurban Ait 2026, first day" in page
    assert "holidays-0.109+1:" in page
    refused = admin.post("/admin/calendar", {"day": "2026-05-27", "kind": "holiday"})
    assert refused.status_code == 422
    assert "reason" in refused.get_data(as_text=True)
    assert admin.post("/admin/calendar", {"day": "soon", "kind": "holiday"}).status_code == 422
    assert admin.post("/admin/calendar/2026-05-26/remove").status_code == 302
    assert _overrides(sessions) == []
    assert admin.post("/admin/calendar/2026-05-26/remove").status_code == 404


def test_calendar_changes_need_the_csrf_token(signed_in, sessions):
    admin = signed_in("admin")
    response = admin.post(
        "/admin/calendar",
        {"day": "2026-05-26", "kind": "holiday", "reason": "r", "legal_act": "a"},
        csrf=False,
    )
    assert response.status_code == 400
    assert _overrides(sessions) == []


def test_notifications_bell(signed_in, sessions, clock):
    with unit_of_work(sessions) as s:
        ids = dict(s.execute(select(User.username, User.id)).all())
        notifications.notify(
            s,
            user_ids=[ids["aigul"]],
            kind="info",
            title="Deadline approaching",
            body="«Register the child»: due 03.03.2026 23:59",
            now=clock.now(),
        )
    aigul, erzhan = signed_in("aigul"), signed_in("erzhan")
    bell = aigul.get("/notifications").get_json()
    assert bell["unread"] == 1
    [item] = bell["items"]
    assert item["title"] == "Deadline approaching"
    assert erzhan.get("/notifications").get_json() == {"unread": 0, "items": []}
    # Someone else's notification is not found; without the token nothing happens.
    assert erzhan.post("/notifications/read", {"id": item["id"]}).status_code == 404
    assert aigul.post("/notifications/read", {"id": item["id"]}, csrf=False).status_code == 400
    marked = aigul.client.post(
        "/notifications/read", json={"id": item["id"]}, headers={"X-CSRF-Token": aigul.token}
    )
    assert marked.get_json() == {"marked": 1, "unread": 0}
    assert aigul.get("/notifications").get_json()["unread"] == 0
