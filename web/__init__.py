"""Qorgau's web application: a thin adapter from HTTP to the engine's services."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify
from sqlalchemy import text

from engine.db import make_engine, make_sessionmaker


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Application factory: one app per process (or per test)."""
    app = Flask(__name__)
    app.config.from_mapping(DATABASE_URL=None)
    if test_config:
        app.config.from_mapping(test_config)
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["qorgau.sessions"] = make_sessionmaker(engine)

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
        return (
            "<!doctype html><html lang=kk><meta charset=utf-8><title>Qorgau</title>"
            "<h1>Qorgau</h1><p>Балалардың құқықтарын қорғау басқармасы · "
            "Управление по защите прав детей</p>"
        )

    @app.after_request
    def security_headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"
        )
        return response

    return app
