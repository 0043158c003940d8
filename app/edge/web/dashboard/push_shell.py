"""The installable dashboard's offline page: what the service worker shows for a navigation
when the network is gone. No session needed (the worker fetches it once, at install)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

from app.edge.web.rendering import AnyRequest, render


@get("/offline", include_in_schema=False)
async def offline(request: AnyRequest) -> Response[Any]:
    return render(request, "dashboard/offline.html")


SHELL_FILES = Path(__file__).resolve().parents[1] / "static" / "shell"
# The worker file lives under /static/ but controls the dashboard's pages: the header lets it
# take the /dashboard/ scope (a worker may otherwise only control its own directory).
SCOPE = "/dashboard/"


def _scope_header(response: Response[Any]) -> Response[Any]:
    response.headers["Service-Worker-Allowed"] = SCOPE
    return response


def shell_router(opt: dict[str, Any]) -> Router:
    """/static/shell/: the service worker, the web app manifest and its icons. Revalidated on
    every load, so a new worker or manifest reaches installed apps without waiting an hour."""
    return create_static_files_router(
        path="/static/shell",
        directories=[SHELL_FILES],
        name="shell",
        cache_control=CacheControlHeader(no_cache=True),
        after_request=_scope_header,
        include_in_schema=False,
        opt=dict(opt),
    )
