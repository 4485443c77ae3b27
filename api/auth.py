"""Bearer tokens with roles (Flask-HTTPAuth): writes need ``historian`` (or ``admin``),
reads are public unless ``TIMELINE_PUBLIC_READS=0``."""

from __future__ import annotations

from functools import wraps
from typing import Any

from flask import Flask, current_app, g
from flask_httpauth import HTTPTokenAuth

from api.problems import problem
from timeline.tokens import Writer

bearer = HTTPTokenAuth(scheme="Bearer")
SECURITY = [{"bearer": []}]


@bearer.verify_token
def _verify(token: str) -> Writer | None:
    if not token:
        return None
    writer = current_app.extensions["timeline"].tokens.writer(token)
    if writer is not None:
        g.writer = writer
    return writer


@bearer.get_user_roles
def _roles(writer: Writer) -> list[str]:
    from timeline.tokens import ROLES

    return [role for role in ROLES if writer.may(role)]


@bearer.error_handler
def _refused(status: int):
    if status == 401:
        return problem(401, "Unauthorized", "a valid bearer token is required",
                       headers={"WWW-Authenticate": 'Bearer realm="timeline"'})
    return problem(403, "Forbidden", "this token's role may not do this")


def writes(role: str = "historian"):
    """A view that needs a token of at least ``role``."""
    return bearer.login_required(role=role)


def reads(view):
    """A read view: public, unless reads are configured to need a token."""
    protected = bearer.login_required(role="reader")(view)

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        if current_app.extensions["timeline"].config["PUBLIC_READS"]:
            return view(*args, **kwargs)
        return protected(*args, **kwargs)

    return wrapper


def init_app(app: Flask) -> None:
    """Nothing to set up beyond the decorators; kept for symmetry with the others."""
