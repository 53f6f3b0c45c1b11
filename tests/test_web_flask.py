"""The ``DNI`` Flask extension in a real Flask app, with Flask's test client."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask, jsonify

from dni_engine import ConfigError, Engine, load_pools
from dni_engine.web import SKIP_HEADER, WebConfig
from dni_engine.web.flask import DNI
from dni_engine.web.wsgi import WSGIMiddleware

ROOT = Path(__file__).resolve().parent.parent
POOLS = load_pools((ROOT / "examples" / "site" / "pools.json").read_bytes())
SECRET = "test-secret-0123456789abcdef"
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
GOOGLE = "https://www.google.com/"
AD_NUMBERS = {f"+44117496010{i}" for i in range(1, 5)}
PAGE = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>ABC Tyres</title></head><body>"
    '<p>Call us on 0117 496 0000 or <a href="tel:+441174960000">tap to call</a>.</p>'
    "</body></html>"
)

ENGINE_FOR_CONFIG: Engine | None = None


def broken_factory() -> Engine:
    raise RuntimeError("no pools file")


def numbers(text: str) -> set[str]:
    return set(re.findall(r'href="tel:([^"]+)"', text))


def make_app(dni: DNI) -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def home() -> str:
        return PAGE

    @app.get("/tyres")
    def tyres() -> str:
        return PAGE

    @app.get("/print")
    @dni.skip
    def printable() -> str:
        return PAGE

    @app.get("/print-async")
    @dni.skip
    async def printable_async() -> str:
        return PAGE

    @app.get("/api")
    def api() -> object:
        return jsonify(phone="0117 496 0000")

    return app


def ad_visit(app: Flask, path: str = "/?gclid=abc") -> tuple[str, object]:
    client = app.test_client()
    response = client.get(path, headers={"User-Agent": BROWSER, "Referer": GOOGLE})
    return response.get_data(as_text=True), response


def test_init_app_wraps_the_wsgi_app() -> None:
    dni = DNI()
    app = make_app(dni)
    middleware = dni.init_app(app, Engine(POOLS), secret=SECRET, debug_header=True)
    assert isinstance(app.wsgi_app, WSGIMiddleware)
    assert app.wsgi_app is middleware is dni.middleware
    assert app.extensions["dni"] is dni
    client = app.test_client()
    first = client.get("/?gclid=abc", headers={"User-Agent": BROWSER, "Referer": GOOGLE})
    (number,) = numbers(first.get_data(as_text=True))
    assert number in AD_NUMBERS
    assert "pool=41001" in first.headers["X-DNI"]
    assert client.get_cookie("dni_visitor") is not None
    second = client.get("/tyres", headers={"User-Agent": BROWSER, "Referer": "http://localhost/"})
    assert numbers(second.get_data(as_text=True)) == {number}


def test_the_constructor_initialises_an_app_at_once() -> None:
    app = Flask(__name__)
    app.get("/")(lambda: PAGE)
    DNI(app, Engine(POOLS), secret=SECRET)
    body, _ = ad_visit(app)
    assert numbers(body) <= AD_NUMBERS
    assert numbers(body)


def test_the_skip_decorator_leaves_the_page_and_drops_its_header() -> None:
    dni = DNI()
    app = make_app(dni)
    dni.init_app(app, Engine(POOLS), secret=SECRET)
    for path in ("/print?gclid=abc", "/print-async?gclid=abc"):
        body, response = ad_visit(app, path)
        assert body == PAGE
        assert SKIP_HEADER not in response.headers  # type: ignore[attr-defined]
        assert "Set-Cookie" not in response.headers  # type: ignore[attr-defined]


def test_json_is_untouched() -> None:
    dni = DNI()
    app = make_app(dni)
    dni.init_app(app, Engine(POOLS), secret=SECRET)
    body, response = ad_visit(app, "/api?gclid=abc")
    assert "0117 496 0000" in body
    assert "Set-Cookie" not in response.headers  # type: ignore[attr-defined]


def test_settings_come_from_the_app_config() -> None:
    global ENGINE_FOR_CONFIG
    ENGINE_FOR_CONFIG = Engine(POOLS)
    dni = DNI()
    app = make_app(dni)
    app.config["DNI_ENGINE"] = f"{__name__}:ENGINE_FOR_CONFIG"
    app.config["DNI_WEB"] = {"secret": SECRET, "debug_header": True}
    dni.init_app(app)
    _, response = ad_visit(app)
    assert "pool=41001" in response.headers["X-DNI"]  # type: ignore[attr-defined]


def test_keyword_fields_override_the_app_config() -> None:
    dni = DNI()
    app = make_app(dni)
    app.config["DNI_WEB"] = WebConfig(secret=SECRET)
    dni.init_app(app, Engine(POOLS), debug_header=True, cookie_name="visitor")
    _, response = ad_visit(app)
    assert "X-DNI" in response.headers  # type: ignore[attr-defined]
    assert "visitor=" in response.headers["Set-Cookie"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("engine", "config", "fields", "named"),
    [
        (None, {}, {"secret": SECRET}, "DNI_ENGINE"),
        ("no_such_module:engine", {}, {"secret": SECRET}, "DNI_ENGINE"),
        (f"{__name__}:broken_factory", {}, {"secret": SECRET}, "DNI_ENGINE.*failed to build"),
        (f"{__name__}:PAGE", {}, {"secret": SECRET}, "DNI_ENGINE.*str"),
        ("engine", {}, {}, "secret"),
        ("engine", {}, {"secret": "short"}, "secret"),
        ("engine", "not a dict", {"secret": SECRET}, "DNI_WEB"),
        ("engine", {}, {"secret": SECRET, "no_such_field": 1}, "no_such_field"),
    ],
)
def test_config_errors_name_the_setting(
    engine: object, config: object, fields: dict[str, object], named: str
) -> None:
    app = Flask(__name__)
    if engine == "engine":
        engine = Engine(POOLS)
    if engine is not None:
        app.config["DNI_ENGINE"] = engine
    if config:
        app.config["DNI_WEB"] = config
    with pytest.raises(ConfigError, match=named):
        DNI().init_app(app, **fields)
    assert not isinstance(app.wsgi_app, WSGIMiddleware)  # nothing wrapped
