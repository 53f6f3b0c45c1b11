"""``DNI``: the WSGI middleware as a Flask extension.

::

    from flask import Flask
    from dni_engine.web.flask import DNI

    app = Flask(__name__)
    dni = DNI(app, engine, secret=os.environ["DNI_SECRET"])

    @app.get("/robots-only")
    @dni.skip
    def untouched(): ...

or with an application factory, ``dni = DNI()`` at import and
``dni.init_app(app, engine, **fields)`` in the factory. What is not given is
read from the app's config: ``DNI_ENGINE`` (an
:class:`~dni_engine.engine.Engine`, or the ``"pkg.mod:name"`` of one or of a
zero-argument callable returning one) and ``DNI_WEB`` (a dict of
:class:`~dni_engine.web.config.WebConfig` fields, or a ``WebConfig``); keyword
fields given to the extension override ``DNI_WEB``'s.

``init_app`` wraps ``app.wsgi_app`` in
:class:`~dni_engine.web.wsgi.WSGIMiddleware`, so everything Flask answers goes
through it, static files and error pages included (they are not page views and
pass untouched). A missing engine or secret raises
:class:`~dni_engine.errors.ConfigError` naming the setting, at ``init_app``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Flask, make_response

from dni_engine.engine import Engine
from dni_engine.errors import ConfigError, Problem
from dni_engine.web.config import WebConfig
from dni_engine.web.core import SKIP_HEADER
from dni_engine.web.wsgi import WSGIMiddleware

__all__ = ["DNI"]

_View = TypeVar("_View", bound=Callable[..., Any])


def _engine_of(value: object) -> Engine:
    """The engine ``value`` names; :class:`ConfigError` naming ``DNI_ENGINE`` when none."""
    if value is None:
        raise ConfigError(
            [Problem("DNI_ENGINE", "no engine: pass engine= or set app.config['DNI_ENGINE']")]
        )
    target = value
    if isinstance(value, str):
        module_name, sep, attribute = value.partition(":")
        if not sep:
            module_name, _, attribute = value.rpartition(".")
        try:
            target = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ConfigError(
                [Problem("DNI_ENGINE", f"{value!r} cannot be imported: {exc}")]
            ) from exc
    if not isinstance(target, Engine) and callable(target):
        try:
            target = target()
        except Exception as exc:
            raise ConfigError([Problem("DNI_ENGINE", f"{value!r} failed to build: {exc}")]) from exc
    if not isinstance(target, Engine):
        raise ConfigError(
            [Problem("DNI_ENGINE", f"must be an Engine or name one; got {type(target).__name__}")]
        )
    return target


def _config_of(base: object, fields: dict[str, Any]) -> WebConfig:
    if isinstance(base, WebConfig) and not fields:
        return base
    merged: dict[str, Any] = {}
    if isinstance(base, WebConfig):
        merged.update({name: getattr(base, name) for name in base.__dataclass_fields__})
    elif isinstance(base, dict):
        merged.update(base)
    elif base is not None:
        raise ConfigError(
            [Problem("DNI_WEB", f"must be a dict of WebConfig fields; got {type(base).__name__}")]
        )
    merged.update(fields)
    if "secret" not in merged:
        raise ConfigError(
            [
                Problem(
                    "DNI_WEB.secret",
                    "is required (16 bytes or more; it signs the landing cookie): pass "
                    "secret= or set app.config['DNI_WEB'] = {'secret': ...}",
                )
            ]
        )
    try:
        return WebConfig(**merged)
    except TypeError as exc:  # an unknown field
        raise ConfigError([Problem("DNI_WEB", str(exc))]) from exc


class DNI:
    """The Flask extension (see the module doc).

    ``DNI(app, engine, **fields)`` initialises ``app`` at once; ``DNI()`` then
    :meth:`init_app` for an application factory. One extension object may
    serve several apps; :attr:`middleware` is the last one made.
    """

    def __init__(
        self, app: Flask | None = None, engine: Engine | None = None, **fields: Any
    ) -> None:
        self.engine = engine
        self.fields = fields
        self.middleware: WSGIMiddleware | None = None
        if app is not None:
            self.init_app(app, engine, **fields)

    def init_app(self, app: Flask, engine: Engine | None = None, **fields: Any) -> WSGIMiddleware:
        """Wrap ``app.wsgi_app`` in the middleware; return it.

        ``engine`` and ``fields`` fall back to those given to the constructor,
        then to ``app.config['DNI_ENGINE']`` and ``app.config['DNI_WEB']``.
        Raises :class:`ConfigError` naming each missing or invalid setting.
        """
        chosen = _engine_of(engine or self.engine or app.config.get("DNI_ENGINE"))
        config = _config_of(app.config.get("DNI_WEB"), {**self.fields, **fields})
        middleware = WSGIMiddleware(app.wsgi_app, chosen, config=config)
        app.wsgi_app = middleware  # type: ignore[method-assign]
        app.extensions["dni"] = self
        self.middleware = middleware
        return middleware

    @staticmethod
    def skip(view: _View) -> _View:
        """Decorate a Flask view whose responses are never touched (sync or async).

        Whatever the view returns (a string, a tuple, a response) becomes a
        response carrying the opt-out header, which the middleware removes.
        """
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_skipped(*args: Any, **kwargs: Any) -> Any:
                response = make_response(await view(*args, **kwargs))
                response.headers[SKIP_HEADER] = "1"
                return response

            return cast(_View, async_skipped)

        @functools.wraps(view)
        def skipped(*args: Any, **kwargs: Any) -> Any:
            response = make_response(view(*args, **kwargs))
            response.headers[SKIP_HEADER] = "1"
            return response

        return cast(_View, skipped)
