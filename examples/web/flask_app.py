"""The example site as a Flask app.

Run it (in memory, one process)::

    python examples/web/flask_app.py            # http://127.0.0.1:8000/

or on Redis with two workers::

    DNI_REDIS_URL=redis://127.0.0.1:6379/0 DNI_SECRET=... \\
        gunicorn -w 2 -b 127.0.0.1:8000 --chdir examples/web flask_app:app

A browser shows the site's number; ``/?gclid=test`` with a Google referrer
takes a Google Ads number (see ``shop.py`` for the settings).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flask import Flask, Response, abort, jsonify, redirect, request
from shop import ENGINE, PAGES, STOCK, web_fields

from dni_engine.web.flask import DNI

app = Flask(__name__)
dni = DNI(app, ENGINE, **web_fields())


@app.after_request
def _worker(response: Response) -> Response:
    response.headers["X-Worker-Pid"] = str(os.getpid())
    return response


@app.get("/")
@app.get("/tyres")
@app.get("/contact")
def page() -> str:
    return PAGES[request.path]


@app.get("/api/stock")
def stock() -> Response:
    return jsonify(STOCK)


@app.get("/offers")
def offers() -> Response:
    return redirect("/tyres")  # type: ignore[return-value]


@app.get("/print")
@dni.skip
def printable() -> str:
    return PAGES["/contact"]  # opted out: always the site's own number


@app.get("/missing")
def missing() -> str:
    abort(404)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
