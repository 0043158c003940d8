"""What app/edge/asgi.py registers for the booking site: its routers (HTML pages with HTML error
pages; the JSON status poll with the API's problem+json), the Jinja2 template engine
(autoescape on) and the static files (no CDN, no third-party code)."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Router
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from app.edge.web import pages_booking, pages_manage, pages_public
from app.edge.web.dashboard import routes as dashboard_routes
from app.edge.web.rendering import HTML_EXCEPTION_HANDLERS

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

# Scripts and styles from this origin only; nothing inline; no framing; the manage token in
# a page's URL never leaves in a Referer.
SECURITY_HEADERS = [
    ResponseHeader(
        name="Content-Security-Policy",
        value=(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; object-src 'none'"
        ),
    ),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
]


# The customer pages need no account (JWTAuth skips handlers with this opt).
PUBLIC = {"exclude_from_auth": True}


def jinja_environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "xml", "txt"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(engine=JinjaTemplateEngine.from_environment(jinja_environment()))


def routers() -> list[Router]:
    pages = Router(
        path="/",
        route_handlers=[
            pages_public.home,
            pages_public.sign_in,
            pages_public.business,
            pages_booking.book,
            pages_booking.details,
            pages_booking.place,
            pages_manage.manage,
            pages_manage.cancel_form,
            pages_manage.cancel,
            pages_manage.reschedule_form,
            pages_manage.reschedule,
        ],
        exception_handlers=HTML_EXCEPTION_HANDLERS,
        response_headers=SECURITY_HEADERS,
        include_in_schema=False,
        opt=PUBLIC,
    )
    polling = Router(
        path="/",
        route_handlers=[pages_manage.status],
        response_headers=SECURITY_HEADERS,
        include_in_schema=False,
        opt=PUBLIC,
    )
    static = create_static_files_router(
        path="/static",
        directories=[STATIC],
        cache_control=CacheControlHeader(max_age=3600, public=True),
        include_in_schema=False,
        opt=PUBLIC,
    )
    return [pages, polling, static, *dashboard_routes.routers(SECURITY_HEADERS, PUBLIC)]
