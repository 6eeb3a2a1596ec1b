"""One database session per request, and the explicit commit that ends a unit of work.

What other areas may rely on (a stable contract):

* ``get_session() -> Session``: the request's session, created on first use from
  ``current_app.extensions["qorgau.sessions"]`` and closed when the request ends.
* ``commit()``: commit the request's session now. Views call it after the engine service
  succeeded and *before* they build the response, so that a failed commit (a conflict)
  becomes an error page instead of a success page for work that was never saved.
* ``unit()``: a context manager yielding the session; it commits when the block ends
  normally and rolls back when it raises.
* ``clock()``: the app's clock (``app.config["CLOCK"]`` in tests, else the system clock).
* Nothing is ever committed at teardown: a request that did not commit leaves no trace.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from engine.clock import SYSTEM_CLOCK, Clock

_KEY = "qorgau_session"


def get_session() -> Session:
    """The session of the current request (created on first use)."""
    session = g.get(_KEY)
    if session is None:
        session = current_app.extensions["qorgau.sessions"]()
        setattr(g, _KEY, session)
    return session


def commit() -> None:
    """Commit the request's unit of work; on failure roll back and re-raise."""
    session = get_session()
    try:
        session.commit()
    except BaseException:
        session.rollback()
        raise


def rollback() -> None:
    """Drop whatever the request changed so far (after a refused command)."""
    session = g.get(_KEY)
    if session is not None:
        session.rollback()


@contextmanager
def unit() -> Iterator[Session]:
    """``with unit() as session:`` — commit at the end of the block, roll back on error."""
    session = get_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


def _close(_exc: BaseException | None) -> None:
    session = g.pop(_KEY, None)
    if session is not None:
        # close() rolls back anything uncommitted: the request did not ask to keep it.
        session.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(_close)


def clock() -> Clock:
    """The app's clock: ``app.config["CLOCK"]`` (tests pass a fixed one), else the system's."""
    return current_app.config.get("CLOCK") or SYSTEM_CLOCK
