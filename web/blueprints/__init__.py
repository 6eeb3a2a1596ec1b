"""Blueprints, one per area. ``create_app`` registers every one listed here."""

from __future__ import annotations

from flask import Blueprint


def all_blueprints() -> list[Blueprint]:
    """Import lazily so that an area's module is loaded only by the app that uses it."""
    blueprints: list[Blueprint] = []
    # Each area appends its blueprint here (one line per area).
    from web.blueprints import api, cases  # JSON API; case files

    blueprints += [api.bp, cases.bp]
    from web import auth  # noqa: I001 - staff pages: sign-in, inbox, tasks, start, absence, admin
    from web.blueprints import absence, admin, inbox, start, tasks

    blueprints += [auth.bp, inbox.bp, tasks.bp, start.bp, absence.bp, admin.bp]
    from web.blueprints import studio  # the analysts' studio

    blueprints += [studio.bp]
    from web.blueprints import orders  # the head's orders, signing queue, public verification

    blueprints.append(orders.bp)
    from web.blueprints import legal_time  # calendar overrides (admin), notifications bell

    blueprints += [legal_time.bp]
    return blueprints
