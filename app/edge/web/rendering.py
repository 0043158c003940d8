"""Rendering a page: the language, the translator, the formatter and the shared context every
template gets; HTML error pages for the same DomainError tree the JSON API maps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Template

from app import errors
from app.edge.http import handle_unexpected, status_for
from app.edge.web.config import web_config
from app.edge.web.errors import LinkExpired
from app.presentation.formatting import Formatter
from app.presentation.i18n import COOKIE, LOCALES, N_, choose, translator

AnyRequest = Request[Any, Any, Any]
LANG_COOKIE_SECONDS = 365 * 24 * 3600


def now() -> datetime:
    return datetime.now(UTC)


def page_lang(request: AnyRequest) -> str:
    return choose(
        request.query_params.get("lang"),
        request.cookies.get(COOKIE),
        request.headers.get("accept-language"),
    )


def with_query(request: AnyRequest, **changes: str | None) -> str:
    """This page's URL with some query parameters replaced (None removes one)."""
    params = {k: v for k, v in request.query_params.items() if k not in changes}
    params.update({k: v for k, v in changes.items() if v is not None})
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


def render(
    request: AnyRequest,
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Template:
    lang = page_lang(request)
    words = translator(lang)
    shared: dict[str, Any] = {
        "_": words.gettext,
        "ngettext": words.ngettext,
        "fmt": Formatter(words.locale),
        "lang": lang,
        "dir": words.direction,
        "languages": [(code, with_query(request, lang=code)) for code in LOCALES],
        "web": web_config(request.app.state),
    }
    shared.update(context)
    cookies: list[Cookie] = []
    if request.query_params.get("lang") in LOCALES:
        cookies.append(
            Cookie(
                key=COOKIE,
                value=lang,
                max_age=LANG_COOKIE_SECONDS,
                path="/",
                samesite="lax",
                httponly=True,
            )
        )
    return Template(
        template_name=template,
        context=shared,
        status_code=status,
        headers=headers,
        cookies=cookies,
    )


ERROR_TITLES = {
    400: N_("This link is not valid"),
    404: N_("We could not find that page"),
    409: N_("That could not be done right now"),
    410: N_("This link has expired"),
    422: N_("Some details are not valid"),
    429: N_("Too many requests"),
    503: N_("We are having trouble right now"),
}


def error_page(request: AnyRequest, status: int, detail: str | None = None) -> Response[Any]:
    title = ERROR_TITLES.get(status, N_("Something went wrong"))
    return render(request, "error.html", status=status, title=title, detail=detail)


def html_domain_error(request: AnyRequest, exc: errors.DomainError) -> Response[Any]:
    status = 410 if isinstance(exc, LinkExpired) else status_for(exc)
    headers = {}
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    response = error_page(request, status)
    response.headers.update(headers)
    return response


def html_http_error(request: AnyRequest, exc: HTTPException) -> Response[Any]:
    status = 400 if isinstance(exc, ValidationException) else exc.status_code
    if status >= 500:
        return html_unexpected(request, exc)
    return error_page(request, status)


def html_unexpected(request: AnyRequest, exc: Exception) -> Response[Any]:
    handle_unexpected(request, exc)  # logs it exactly as the API does
    return error_page(request, 500)


HTML_EXCEPTION_HANDLERS: Any = {
    errors.DomainError: html_domain_error,
    HTTPException: html_http_error,
    Exception: html_unexpected,
}
