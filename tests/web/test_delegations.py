"""The head's delegations of signing to a deputy head: the page lists current, upcoming and
past ones, grants and revokes (both audited), refuses other roles and forms without the
CSRF token, and shows bad input next to its field in the user's language."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select, update

from engine import delegations
from engine.db import unit_of_work
from engine.models import AuditEvent, User

GRANT = {
    "deputy": "deputy",
    "starts_on": "2026-03-02",  # the test clock's day
    "ends_on": "2026-03-06",
    "reason": "іссапар / командировка",
}


def _delegations(sessions):
    with unit_of_work(sessions) as s:
        return delegations.list_delegations(s)


def _events(sessions, action):
    with unit_of_work(sessions) as s:
        return [
            (e.actor, e.detail)
            for e in s.scalars(select(AuditEvent).where(AuditEvent.action == action))
        ]


def _speaks(sessions, username, language):
    with unit_of_work(sessions) as s:
        s.execute(update(User).where(User.username == username).values(language=language))


def _grant(sessions, people, clock, starts_on, ends_on, reason=None):
    """A delegation granted by the head through the engine, as the CLI does."""
    with unit_of_work(sessions) as s:
        return delegations.grant_delegation(
            s,
            actor=people["head"],
            deputy="deputy",
            starts_on=starts_on,
            ends_on=ends_on,
            reason=reason,
            now=clock.now(),
        )


def _section(page, section):
    start = page.index(f'id="{section}"')
    return page[start : page.index("</table>", start)]


def _error(page, field):
    found = re.search(rf'<p class="error" id="f-{field}-err">([^<]*)</p>', page)
    return found.group(1) if found else None


def test_the_head_grants_sees_and_revokes_a_delegation(signed_in, sessions):
    _speaks(sessions, "head", "en")
    head = signed_in("head")
    queue = head.get("/orders/queue").get_data(as_text=True)
    assert 'href="/orders/delegations"' in queue
    page = head.get("/orders/delegations").get_data(as_text=True)
    assert '<option value="deputy">Deputy (deputy)</option>' in page
    assert signed_in("deputy").get("/orders/queue").status_code == 403  # no delegation yet

    granted = head.post("/orders/delegations", GRANT)
    assert granted.status_code == 302 and granted.headers["Location"] == "/orders/delegations"
    [view] = _delegations(sessions)
    assert (view.head, view.deputy, view.starts_on, view.ends_on, view.revoked) == (
        "head",
        "deputy",
        date(2026, 3, 2),
        date(2026, 3, 6),
        False,
    )
    assert view.reason == "іссапар / командировка"
    assert _events(sessions, "order.delegation_granted") == [
        (
            "head",
            {
                "delegation_id": view.id,
                "deputy": "deputy",
                "starts_on": "2026-03-02",
                "ends_on": "2026-03-06",
                "reason": "іссапар / командировка",
            },
        )
    ]
    current = _section(head.get("/orders/delegations").get_data(as_text=True), "current")
    assert "Deputy" in current and "06.03.2026" in current and "командировка" in current
    assert f"/orders/delegations/{view.id}/revoke" in current
    # The deputy now signs for the head.
    deputy_queue = signed_in("deputy").get("/orders/queue")
    assert deputy_queue.status_code == 200
    assert "delegations-link" not in deputy_queue.get_data(as_text=True)

    revoked = head.post(f"/orders/delegations/{view.id}/revoke")
    assert revoked.status_code == 302
    [view] = _delegations(sessions)
    assert view.revoked
    assert _events(sessions, "order.delegation_revoked") == [("head", {"delegation_id": view.id})]
    page = head.get("/orders/delegations").get_data(as_text=True)
    assert "None." in _section(page, "current")
    past = _section(page, "past")
    assert "06.03.2026" in past and "revoked" in past and "/revoke" not in past
    assert signed_in("deputy").get("/orders/queue").status_code == 403
    # Revoking again changes nothing and is not audited twice.
    assert head.post(f"/orders/delegations/{view.id}/revoke").status_code == 302
    assert len(_events(sessions, "order.delegation_revoked")) == 1


def test_current_upcoming_and_past_are_listed_apart(signed_in, sessions, people, clock):
    _speaks(sessions, "head", "en")
    past = _grant(sessions, people, clock, date(2026, 2, 2), date(2026, 2, 13), "демалыс / отпуск")
    future = _grant(sessions, people, clock, date(2026, 4, 1), date(2026, 4, 3))
    current = _grant(sessions, people, clock, date(2026, 3, 1), date(2026, 3, 2))
    page = signed_in("head").get("/orders/delegations").get_data(as_text=True)
    sections = {name: _section(page, name) for name in ("current", "future", "past")}
    assert f"delegation-{current.id}" in sections["current"]
    assert f"delegation-{future.id}" in sections["future"]
    assert f"delegation-{past.id}" in sections["past"]
    assert "13.02.2026" in sections["past"] and "отпуск" in sections["past"]
    assert "01.04.2026" in sections["future"]
    assert f"/orders/delegations/{future.id}/revoke" in sections["future"]
    assert "/revoke" not in sections["past"]


@pytest.mark.parametrize("username", ["aigul", "deputy", "maria", "admin"])
def test_only_the_head_delegates(signed_in, sessions, people, clock, username):
    existing = _grant(sessions, people, clock, date(2026, 3, 2), date(2026, 3, 3))
    other = signed_in(username)
    other.get("/absence")  # a page with a form: the CSRF token of this session
    assert other.get("/orders/delegations").status_code == 403
    assert other.post("/orders/delegations", GRANT).status_code == 403
    assert other.post(f"/orders/delegations/{existing.id}/revoke").status_code == 403
    assert [(d.id, d.revoked) for d in _delegations(sessions)] == [(existing.id, False)]


def test_a_form_without_the_csrf_token_is_refused(signed_in, sessions, people, clock):
    existing = _grant(sessions, people, clock, date(2026, 3, 2), date(2026, 3, 3))
    head = signed_in("head")
    head.get("/orders/delegations")
    assert head.post("/orders/delegations", GRANT, csrf=False).status_code == 400
    refused = head.post(f"/orders/delegations/{existing.id}/revoke", csrf=False)
    assert refused.status_code == 400
    assert [(d.id, d.revoked) for d in _delegations(sessions)] == [(existing.id, False)]
    wrong = head.post("/orders/delegations", {**GRANT, "csrf_token": "forged"}, csrf=False)
    assert wrong.status_code == 400
    assert len(_delegations(sessions)) == 1


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"ends_on": "2026-03-01"}, "ends_on", "The delegation ends before it starts."),
        ({"deputy": "nobody"}, "deputy", "No active user by this name."),
        ({"deputy": ""}, "deputy", "No active user by this name."),
        ({"deputy": "aigul"}, "deputy", "This user is not a deputy head."),
        ({"starts_on": "02.03.2026"}, "starts_on", "not a valid date"),
        ({"ends_on": ""}, "ends_on", "not a valid date"),
        ({"reason": "x" * 501}, "reason", "must be at most 500 characters long"),
    ],
)
def test_bad_input_is_shown_next_to_its_field_and_nothing_is_saved(
    signed_in, sessions, change, field, message
):
    _speaks(sessions, "head", "en")
    head = signed_in("head")
    head.get("/orders/delegations")
    response = head.post("/orders/delegations", {**GRANT, **change})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert _error(page, field) == message
    assert f'aria-describedby="f-{field}-err"' in page
    others = {"deputy", "starts_on", "ends_on", "reason"} - {field}
    assert all(_error(page, name) is None for name in others)
    assert _delegations(sessions) == []
    assert _events(sessions, "order.delegation_granted") == []
    # What was typed stays in the form.
    if field != "reason":
        assert 'value="іссапар / командировка"' in page


def test_field_errors_follow_the_users_language(signed_in, sessions):
    _speaks(sessions, "head", "ru")
    head = signed_in("head")
    head.get("/orders/delegations")
    page = head.post("/orders/delegations", {**GRANT, "ends_on": "завтра"}).get_data(as_text=True)
    assert _error(page, "ends_on") == "неверная дата"
    assert _delegations(sessions) == []
