"""The browser tests' site: Starlette pages behind ASGIMiddleware, served by uvicorn on loopback.

Every page is sent as a page cache would send it: the same HTML to everyone,
the site's own numbers in it (each response carries :data:`SKIP_HEADER`, so
the middleware leaves it alone); only the script swaps, in the browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from dni_engine import Engine
from dni_engine.web import SKIP_HEADER, ASGIMiddleware, WebConfig

__all__ = ["Site", "serve"]

ASGIApp = Callable[..., Any]


class Site:
    """A running test site: ``url(path)``; ``pages`` maps a path to its HTML (and headers)."""

    def __init__(self, engine: Engine, **config: Any) -> None:
        self.engine = engine
        self.pages: dict[str, tuple[str, dict[str, str]]] = {}
        self.swaps = 0
        app = Starlette(routes=[Route("/{path:path}", self._page)])
        self.middleware = ASGIMiddleware(app, engine, WebConfig(**config))
        self.port = 0

    async def _page(self, request: Request) -> Response:
        found = self.pages.get("/" + request.path_params["path"])
        if found is None and request.url.path == "/favicon.ico":
            return Response(status_code=204)
        if found is None:
            return Response("not found", status_code=404)
        html, headers = found
        return HTMLResponse(html, headers={SKIP_HEADER: "1", **headers})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """The app: the middleware, with the swap endpoint slowed or failed on demand.

        A page whose URL holds ``slow=1`` gets its answer after 3 s, ``lag=1`` after
        0.6 s; ``down=1``: a 503.
        """
        if scope["type"] == "http" and scope["path"].endswith("/swap"):
            self.swaps += 1
            referer = dict(scope["headers"]).get(b"referer", b"")
            if b"down=1" in referer:
                await Response("down", status_code=503)(scope, receive, send)
                return
            if b"slow=1" in referer:
                await asyncio.sleep(3)
            if b"lag=1" in referer:
                await asyncio.sleep(0.6)
        await self.middleware(scope, receive, send)

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this site."""
        return f"http://127.0.0.1:{self.port}{path}"


@contextlib.contextmanager
def serve(site: Site) -> Iterator[Site]:
    """Serve ``site`` with uvicorn on a free loopback port, in a thread, until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    site.port = sock.getsockname()[1]
    config = uvicorn.Config(site, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield site
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()
