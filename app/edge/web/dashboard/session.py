"""The dashboard's session: the API's own access token in an HttpOnly cookie, verified by the
same code the API's JWT authentication runs (app.edge.auth.principal_from_token), so a
deactivated user or a changed role applies on the next request exactly as it does for the API.

CSRF: every unsafe request carries a token (a hidden `_csrf` field or an `X-CSRF-Token`
header) that is an HMAC of what the browser holds: the session token once signed in, a
random pre-session nonce on the sign-in form. A page of another origin can make the browser
send the cookies but cannot read the token, so it cannot forge one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.security.jwt import JWTAuth, Token

from app import errors
from app.edge.auth import issue_token, principal_from_token
from app.edge.web.config import web_config
from app.tenancy.service import Principal

SESSION_COOKIE = "reckon_session"
PRESESSION_COOKIE = "reckon_signin"
CSRF_FIELD = "_csrf"
CSRF_HEADER = "x-csrf-token"
COOKIE_PATH = "/dashboard"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Handler opt: the sign-in form's token is bound to the pre-session nonce, not a session.
PRESESSION = "csrf_presession"

AnyConnection = ASGIConnection[Any, Any, Any, Any]


class NotSignedIn(errors.Unauthenticated):
    """No session, or one that no longer stands (expired, user deactivated, signed out)."""

    slug = "unauthenticated"
    title = "Sign in to continue"


class CsrfRefused(errors.Forbidden):
    slug = "csrf_failed"
    title = "The form has expired or did not come from this site; reload the page and retry"


def _jwt(connection: AnyConnection) -> JWTAuth[Principal, Token]:
    jwt_auth: JWTAuth[Principal, Token] = connection.app.state.jwt_auth
    return jwt_auth


def _key(connection: AnyConnection) -> bytes:
    # Its own key, derived from the one secret, so a CSRF token is never also a signature
    # that means something elsewhere.
    secret = _jwt(connection).token_secret.encode()
    return hmac.new(secret, b"reckon-dashboard-csrf-v1", hashlib.sha256).digest()


def _mac(connection: AnyConnection, binding: str) -> str:
    digest = hmac.new(_key(connection), binding.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_token(connection: AnyConnection) -> str:
    """The token forms and fetches of this session carry ("" when there is none yet)."""
    binding = connection.cookies.get(SESSION_COOKIE)
    return _mac(connection, "session|" + binding) if binding else ""


def presession_token(connection: AnyConnection, nonce: str) -> str:
    return _mac(connection, "signin|" + nonce)


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def _secure(connection: AnyConnection) -> bool:
    return not web_config(connection.app.state).development


def session_cookie(connection: AnyConnection, token: str) -> Cookie:
    ttl = int(_jwt(connection).default_token_expiration.total_seconds())
    return Cookie(
        key=SESSION_COOKIE,
        value=token,
        max_age=ttl,
        path=COOKIE_PATH,
        httponly=True,
        secure=_secure(connection),
        samesite="lax",
    )


def presession_cookie(connection: AnyConnection, nonce: str) -> Cookie:
    return Cookie(
        key=PRESESSION_COOKIE,
        value=nonce,
        max_age=3600,
        path=COOKIE_PATH,
        httponly=True,
        secure=_secure(connection),
        samesite="lax",
    )


def expired_cookie(connection: AnyConnection, key: str) -> Cookie:
    return Cookie(
        key=key,
        value="",
        max_age=0,
        path=COOKIE_PATH,
        httponly=True,
        secure=_secure(connection),
        samesite="lax",
    )


def start_session(connection: AnyConnection, user: Principal) -> Cookie:
    """The API's access token for this user, as the session cookie."""
    return session_cookie(connection, issue_token(_jwt(connection), user))


async def session_principal(connection: AnyConnection) -> Principal | None:
    """The signed-in user, verified as JWTAuth verifies a Bearer token; None otherwise."""
    encoded = connection.cookies.get(SESSION_COOKIE)
    if not encoded:
        return None
    jwt_auth = _jwt(connection)
    try:
        token = jwt_auth.token_cls.decode(
            encoded_token=encoded,
            secret=jwt_auth.token_secret,
            algorithm=jwt_auth.algorithm,
            audience=jwt_auth.accepted_audiences,
            issuer=jwt_auth.accepted_issuers,
            require_claims=jwt_auth.require_claims,
            verify_exp=jwt_auth.verify_expiry,
            verify_nbf=jwt_auth.verify_not_before,
            strict_audience=jwt_auth.strict_audience,
        )
    except NotAuthorizedException:
        return None
    return await principal_from_token(token, connection)


async def signed_in(connection: AnyConnection, _: BaseRouteHandler) -> None:
    """Guard: the session's user goes where the API's JWT auth puts it (scope["user"]), so
    app.edge.http.principal and manager_only work unchanged. OPTIONS passes: it only answers
    with the Allow header (as app.edge.http.manager_only does)."""
    if connection.scope.get("method") == "OPTIONS":
        return
    user = await session_principal(connection)
    if user is None:
        raise NotSignedIn()
    connection.scope["user"] = user


async def _submitted_token(connection: AnyConnection) -> str:
    header = connection.headers.get(CSRF_HEADER)
    if header:
        return header
    if isinstance(connection, Request):
        content_type = connection.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await connection.form()
            return str(form.get(CSRF_FIELD) or "")
    return ""


async def csrf_protected(connection: AnyConnection, handler: BaseRouteHandler) -> None:
    """Guard: an unsafe request must carry the token of the session (or of the sign-in form's
    nonce); without it nothing runs (403)."""
    if connection.scope.get("method") not in UNSAFE:
        return
    if handler.opt.get(PRESESSION):
        nonce = connection.cookies.get(PRESESSION_COOKIE)
        expected = presession_token(connection, nonce) if nonce else ""
    else:
        expected = csrf_token(connection)
    submitted = await _submitted_token(connection)
    if not expected or not hmac.compare_digest(expected.encode(), submitted.encode()):
        raise CsrfRefused()
