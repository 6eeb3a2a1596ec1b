"""Sign-in, sign-out and who is asking: the user and the ``Actor`` of this request.

What other areas may rely on (a stable contract):

* Blueprint ``auth``: ``auth.sign_in`` (GET/POST ``/sign-in``), ``auth.sign_out``
  (POST ``/sign-out``), ``auth.language`` (POST ``/language``: switch and remember).
* ``current_user() -> User | None``: the signed-in, active user (one query per request).
* ``current_actor() -> Actor | None``: the actor every engine command of this request runs
  as: the one given to ``set_request_actor`` (e.g. by API token authentication), else the
  signed-in user's.
* ``set_request_actor(actor, language=None)``: authenticate this request by other means
  (an API token); ``current_user()`` then returns that actor's user, read when first
  asked for, and pages and errors speak ``language``.
* ``@login_required``: anonymous requests go to the sign-in page (401 JSON under /api/).
* ``@roles_required(*roles)``: signed in and holding at least one of ``roles``, else 403.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import select

from engine import signin
from engine.identity import Actor, actor_for
from engine.models import User
from web.db import clock, commit, get_session

bp = Blueprint("auth", __name__)

F = TypeVar("F", bound=Callable[..., Any])
_UNSET = object()


def current_user() -> User | None:
    cached = g.get("qorgau_user", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    user = None
    token_actor = g.get("qorgau_token_actor")
    user_id = token_actor.user_id if token_actor is not None else session.get("user_id")
    if isinstance(user_id, int):
        found = get_session().get(User, user_id)
        # A deactivated user is signed out on their next request.
        if found is not None and found.is_active:
            user = found
    g.qorgau_user = user
    return user


def current_actor() -> Actor | None:
    actor = g.get("qorgau_actor")
    if actor is not None:
        return actor
    user = current_user()
    if user is None:
        return None
    g.qorgau_actor = actor_for(user)
    return g.qorgau_actor


def set_request_actor(actor: Actor, language: str | None = None) -> None:
    """Authenticate this request without a session (API tokens)."""
    g.qorgau_actor = g.qorgau_token_actor = actor
    g.pop("qorgau_user", None)
    if language:
        g.lang_preference = language


def _is_api() -> bool:
    return request.path.startswith("/api/")


def login_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_actor() is None:
            if _is_api():
                abort(401)
            return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def roles_required(*roles: str) -> Callable[[F], F]:
    wanted = frozenset(roles)

    def decorator(view: F) -> F:
        @login_required
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            actor = current_actor()
            if actor is None or not (actor.roles & wanted):
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def safe_next(target: str | None, default: str = "/") -> str:
    """Only a path on this site: never an absolute URL another site could put there."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target:
        return default
    return target


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    status = 200
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        db = get_session()
        result = signin.sign_in(
            db,
            username=username,
            password=password,
            address=request.remote_addr,
            now=clock().now(),
        )
        commit()  # failures are remembered even though the sign-in failed
        if result.ok:
            lang = session.get("lang")
            # A fresh session: nothing set before signing in (a planted id) survives.
            session.clear()
            session.permanent = True
            session["user_id"] = result.user_id
            if lang:
                session["lang"] = lang
            g.pop("qorgau_user", None)
            return redirect(safe_next(request.args.get("next"), url_for("inbox.index")))
        if result.locked_until is not None:
            flash(_("Too many failed attempts. Try again in 15 minutes."), "error")
            status = 429
        else:
            flash(_("Wrong user name or password."), "error")
            status = 401
    elif current_actor() is not None:
        return redirect(url_for("inbox.index"))
    return render_template("auth/sign_in.html"), status


@bp.post("/sign-out")
def sign_out() -> Any:
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.sign_in"))


@bp.post("/language")
def language() -> Any:
    from web.i18n import LANGUAGES

    lang = request.form.get("lang", "")
    if lang not in LANGUAGES:
        abort(400)
    session["lang"] = lang
    user = current_user()
    if user is not None:
        user.language = lang
        commit()
    g.pop("lang", None)
    return redirect(safe_next(request.form.get("next") or _referrer_path()))


def _referrer_path() -> str | None:
    ref = request.referrer
    if not ref:
        return None
    parts = urlsplit(ref)
    if parts.netloc and parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def init_app(app: Any) -> None:
    app.config.setdefault("PERMANENT_SESSION_LIFETIME", timedelta(hours=10))
    app.jinja_env.globals.update(
        current_user=current_user, current_actor=current_actor, has_role=has_role
    )


def has_role(*roles: str) -> bool:
    """Whether this request's actor holds any of ``roles`` (for showing links)."""
    actor = current_actor()
    return actor is not None and bool(actor.roles & set(roles))


def users_by_id(ids: set[int]) -> dict[int, User]:
    """Users for a page's assignee and claimant columns, in one query."""
    if not ids:
        return {}
    return {u.id: u for u in get_session().scalars(select(User).where(User.id.in_(ids)))}
