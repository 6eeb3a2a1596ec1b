"""Blueprints, one per area. ``create_app`` registers every one listed here."""

from __future__ import annotations

from flask import Blueprint


def all_blueprints() -> list[Blueprint]:
    """Import lazily so that an area's module is loaded only by the app that uses it."""
    blueprints: list[Blueprint] = []
    # Each area appends its blueprint here (one line per area).
    return blueprints
