"""A real server and Debian's headless Chromium, driven by Playwright.

The browser is the system's ``/usr/bin/chromium`` (``make test`` installs it with apt when
missing); Playwright's own browser downloads are never used. Without it the browser tests
are skipped with the reason, so that a machine without the package says so plainly.
"""

from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.web import conftest as web_fixtures

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The populated database template of the web tests, shared.
web_template = web_fixtures.web_template


@pytest.fixture
def live_server(web_template, tmp_path, clock):
    """The app on a copy of the populated SQLite file, served on a free port in a thread."""
    target = tmp_path / "qorgau.sqlite3"
    shutil.copy(web_template, target)
    app = web_fixtures.make_app(f"sqlite:///{target}", clock, tmp_path)
    server = make_server("127.0.0.1", _free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()
    server.server_close()
    app.extensions["qorgau.engine"].dispose()


@pytest.fixture(scope="session")
def chromium():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium):
    """``new_page()`` → a page in a fresh browser context (its own cookies)."""
    contexts = []

    def make():
        context = chromium.new_context(locale="kk-KZ")
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
