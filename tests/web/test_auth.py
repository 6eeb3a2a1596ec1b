"""Sign-in, sign-out, the brake on guessing, CSRF, security headers, language choice."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from engine.db import unit_of_work
from engine.models import User
from engine.models.workspace import LoginBrake
from tests.web.conftest import PASSWORD, Browser


def test_sign_in_and_out(people, browser):
    assert browser.get("/inbox").status_code == 302  # anonymous: to the sign-in page
    response = browser.sign_in("aigul")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/inbox")
    page = browser.get("/inbox")
    assert page.status_code == 200
    assert "Aigul" in page.get_data(as_text=True)
    out = browser.post("/sign-out")
    assert out.status_code == 302
    assert browser.get("/inbox").headers["Location"].startswith("/sign-in")


def test_wrong_password_is_refused_and_counted(people, browser, sessions):
    response = browser.sign_in("aigul", "wrong password")
    assert response.status_code == 401
    assert browser.get("/inbox").status_code == 302
    with unit_of_work(sessions) as s:
        row = s.get(LoginBrake, "user:aigul")
        assert row.failures == 1


def test_brake_locks_a_user_name_after_five_failures(people, browser, clock):
    for _ in range(4):
        assert browser.sign_in("aigul", "guess").status_code == 401
    assert browser.sign_in("aigul", "guess").status_code == 429
    # Even the right password is not checked while locked.
    locked = browser.sign_in("aigul", PASSWORD)
    assert locked.status_code == 429
    assert "15" in locked.get_data(as_text=True)
    # Another user is not affected by aigul's lock (different name, same address is
    # below the address limit).
    assert browser.sign_in("erzhan").status_code == 302
    clock.advance(timedelta(minutes=16))
    assert Browser(browser.client.application.test_client()).sign_in("aigul").status_code == 302


def test_brake_locks_an_address_that_guesses_many_names(people, app):
    client = Browser(app.test_client())
    for i in range(19):
        assert client.sign_in(f"nobody{i}", "guess").status_code == 401
    assert client.sign_in("nobody19", "guess").status_code == 429
    # Now even a real user from that address must wait.
    assert client.sign_in("maria").status_code == 429
    other = Browser(app.test_client())
    assert (
        other.client.post(
            "/sign-in",
            data={
                "username": "maria",
                "password": PASSWORD,
                "csrf_token": other.get("/sign-in") and other.token,
            },
            environ_base={"REMOTE_ADDR": "10.0.0.9"},
        ).status_code
        == 302
    )


def test_a_deactivated_user_is_signed_out(people, signed_in, sessions):
    b = signed_in("erzhan")
    assert b.get("/inbox").status_code == 200
    with unit_of_work(sessions) as s:
        s.scalar(select(User).where(User.username == "erzhan")).is_active = False
    assert b.get("/inbox").status_code == 302
    assert b.sign_in("erzhan").status_code == 401


def test_post_without_or_with_a_wrong_csrf_token_is_refused(people, signed_in, sessions):
    b = signed_in("aigul")
    assert b.post("/sign-out", csrf=False).status_code == 400
    assert b.post("/sign-out", {"csrf_token": "forged"}).status_code == 400
    assert b.post("/language", {"lang": "ru", "csrf_token": "forged"}).status_code == 400
    with unit_of_work(sessions) as s:
        assert s.scalar(select(User.language).where(User.username == "aigul")) == "kk"
    # Still signed in: the forged sign-out did nothing.
    assert b.get("/inbox").status_code == 200
    # The sign-in form itself needs the token too (login CSRF).
    fresh = Browser(b.client.application.test_client())
    refused = fresh.client.post("/sign-in", data={"username": "aigul", "password": PASSWORD})
    assert refused.status_code == 400


def test_csrf_header_is_accepted_for_scripts(people, signed_in):
    b = signed_in("aigul")
    b.get("/inbox")
    response = b.client.post("/language", data={"lang": "en"}, headers={"X-CSRF-Token": b.token})
    assert response.status_code == 302


def test_security_headers(people, signed_in, browser):
    for response in (browser.get("/sign-in"), signed_in("aigul").get("/inbox")):
        headers = response.headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["Cache-Control"] == "no-store"
    cookie = browser.sign_in("maria").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_no_inline_script_or_event_handler_in_pages(world, signed_in):
    b = signed_in("head")
    for path in ("/inbox", "/start", "/absence", "/sign-in"):
        html = b.get(path).get_data(as_text=True)
        assert "<script>" not in html
        assert " onclick=" not in html and " onload=" not in html and " onsubmit=" not in html


def test_next_never_leaves_the_site(people, browser):
    browser.get("/sign-in")
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = browser.client.post(
            "/sign-in?next=" + target,
            data={"username": "aigul", "password": PASSWORD, "csrf_token": browser.token},
        )
        assert response.headers["Location"] == "/inbox"
        browser.post("/sign-out")
        browser.get("/sign-in")
    response = browser.client.post(
        "/sign-in?next=/absence",
        data={"username": "aigul", "password": PASSWORD, "csrf_token": browser.token},
    )
    assert response.headers["Location"] == "/absence"


def test_language_switch_is_remembered_per_user(people, app, sessions):
    b = Browser(app.test_client())
    page = b.get("/sign-in").get_data(as_text=True)
    assert 'lang="kk"' in page and "Кіру" in page  # Kazakh by default
    b.post("/language", {"lang": "ru", "next": "/sign-in"})
    assert "Вход" in b.get("/sign-in").get_data(as_text=True)
    b.sign_in("aigul")  # aigul's own choice (kk) wins once signed in
    assert "Кіріс тапсырмалар" in b.get("/inbox").get_data(as_text=True)
    b.post("/language", {"lang": "en", "next": "/inbox"})
    assert "<h1>Inbox</h1>" in b.get("/inbox").get_data(as_text=True)
    with unit_of_work(sessions) as s:
        assert s.scalar(select(User.language).where(User.username == "aigul")) == "en"
    # Remembered on the next sign-in, in another browser.
    other = Browser(app.test_client())
    other.sign_in("aigul")
    assert 'lang="en"' in other.get("/inbox").get_data(as_text=True)
    assert b.post("/language", {"lang": "de"}).status_code == 400
