"""The example site as a FastAPI app.

Run it (in memory, one process)::

    python examples/web/fastapi_app.py          # http://127.0.0.1:8000/

or on Redis with two workers::

    DNI_REDIS_URL=redis://127.0.0.1:6379/0 DNI_SECRET=... \\
        uvicorn --workers 2 --port 8000 --app-dir examples/web fastapi_app:app

See ``shop.py`` for the settings.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from shop import ENGINE, PAGES, STOCK, web_fields
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dni_engine.web import ASGIMiddleware, skip


class WorkerPid:
    """Adds ``X-Worker-Pid`` to every response (to show which worker answered)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.pid = str(os.getpid()).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_pid(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-worker-pid", self.pid)]
            await send(message)

        await self.app(scope, receive, send_with_pid if scope["type"] == "http" else send)


app = FastAPI(title="ABC Tyres")
app.add_middleware(ASGIMiddleware, engine=ENGINE, **web_fields())
app.add_middleware(WorkerPid)


@app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
@app.api_route("/tyres", methods=["GET", "HEAD"], response_class=HTMLResponse)
@app.api_route("/contact", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def page(request: Request) -> str:
    return PAGES[request.url.path]


@app.get("/stream")
async def streamed() -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        text = PAGES["/contact"].encode()
        for start in range(0, len(text), 64):  # the number is split across chunks
            yield text[start : start + 64]

    return StreamingResponse(chunks(), media_type="text/html; charset=utf-8")


@app.get("/api/stock")
async def stock() -> dict[str, object]:
    return STOCK


@app.get("/offers")
async def offers() -> RedirectResponse:
    return RedirectResponse("/tyres")


@app.get("/print")
@skip
async def printable() -> HTMLResponse:
    return HTMLResponse(PAGES["/contact"])  # opted out: always the site's own number


@app.get("/missing")
async def missing() -> None:
    raise HTTPException(404)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
