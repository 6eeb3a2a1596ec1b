"""Qorgau's web application: a thin adapter from HTTP to the engine's services."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, redirect, url_for
from sqlalchemy import text

from engine.config import VAR_DIR
from engine.db import make_engine, make_sessionmaker

# Content Security Policy: scripts and styles only from our own static files (no inline
# code, so an injected <script> or on*= attribute does not run), no plugins, no framing,
# forms post only to us.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def _secret_key(config: dict[str, Any]) -> str:
    """The key that signs session cookies: configured, from the environment, or made once
    and kept under var/ so that every worker process (and a restart) shares it."""
    if config.get("SECRET_KEY"):
        return str(config["SECRET_KEY"])
    if os.environ.get("QORGAU_SECRET_KEY"):
        return os.environ["QORGAU_SECRET_KEY"]
    path = Path(VAR_DIR) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another worker wrote it first
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Application factory: one app per process (or per test)."""
    app = Flask(__name__)
    app.config.from_mapping(
        DATABASE_URL=None,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="qorgau_session",
        SESSION_COOKIE_SECURE=os.environ.get("QORGAU_SECURE_COOKIES") == "1",
        MAX_CONTENT_LENGTH=32 * 1024 * 1024,
    )
    if test_config:
        app.config.from_mapping(test_config)
    app.config["SECRET_KEY"] = _secret_key(app.config)
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["qorgau.sessions"] = make_sessionmaker(engine)
    app.extensions["qorgau.engine"] = engine

    from web import auth, csrf, db, errors, i18n, labels, templating

    db.init_app(app)
    i18n.init_app(app)
    csrf.init_app(app)
    auth.init_app(app)
    errors.init_app(app)
    templating.init_app(app)
    labels.init_app(app)

    from web.blueprints import all_blueprints

    for blueprint in all_blueprints():
        app.register_blueprint(blueprint)

    @app.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        with app.extensions["qorgau.sessions"]() as session:
            session.execute(text("SELECT 1"))
        return jsonify(status="ok")

    @app.get("/")
    def index():  # type: ignore[no-untyped-def]
        return redirect(url_for("inbox.index"))

    @app.after_request
    def security_headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=()"
        )
        if app.config["SESSION_COOKIE_SECURE"]:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if response.mimetype == "text/html":
            # Pages show children's personal data: never keep them in shared caches.
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app
