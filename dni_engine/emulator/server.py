"""Serving the emulator over real HTTP with uvicorn: in the foreground or in a thread."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

from dni_engine.extras import MissingExtra

try:
    import uvicorn
except ImportError as exc:
    raise MissingExtra("dni_engine.emulator", "emulator", exc.name) from exc

from dni_engine.emulator.app import Emulator
from dni_engine.emulator.faults import ConnectionDropped
from dni_engine.errors import ConfigError, DniError, Problem

__all__ = ["START_TIMEOUT", "EmulatorServer", "serve"]

START_TIMEOUT = 10.0


class _QuietDrops(logging.Filter):
    """Drop uvicorn's traceback for a connection the emulator cut on purpose.

    The fault injector logs its own one-line warning for each drop.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped)


def _quiet_dropped_connections() -> None:
    log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in log.filters):
        log.addFilter(_QuietDrops())


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio turns Nagle off only on sockets that say they
    # are TCP, and with Nagle on each keep-alive response waits ~40 ms for an ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise ConfigError([Problem("port", f"cannot listen on {host}:{port} ({reason})")]) from None
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _config(emulator: Emulator, **options: object) -> uvicorn.Config:
    return uvicorn.Config(
        emulator.app,
        lifespan="off",
        http="h11",  # the dropped-connection fault relies on h11 closing a half-sent response
        ws="none",
        timeout_graceful_shutdown=5,
        **options,  # type: ignore[arg-type]
    )


def serve(
    emulator: Emulator,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    log_level: str = "info",
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``emulator`` on ``host:port`` until interrupted (Ctrl-C, SIGTERM).

    ``on_ready`` is called with the base URL once the socket is listening
    (``port`` 0 picks a free port; the URL tells which).
    """
    sock = _listen(host, port)
    try:
        server = uvicorn.Server(_config(emulator, log_level=log_level))
        _quiet_dropped_connections()
        if on_ready is not None:
            on_ready(_url(sock))
        server.run(sockets=[sock])
    finally:
        sock.close()


class EmulatorServer:
    """An :class:`Emulator` served over loopback HTTP from a background thread.

    For tests and CI: ``with EmulatorServer() as server: Client(token,
    base_url=server.url)``. ``port`` 0 (the default) takes a free port.
    Logging is left to the host application (uvicorn's own config is not
    applied).
    """

    def __init__(
        self, emulator: Emulator | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.emulator = emulator or Emulator()
        self._host = host
        self._port = port
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321`` (once started)."""
        if self._sock is None:
            raise DniError("the emulator server is not running; call start() first")
        return _url(self._sock)

    def start(self) -> Self:
        """Start serving; returns once the server accepts requests."""
        if self._thread is not None:
            return self
        sock = _listen(self._host, self._port)
        server = uvicorn.Server(_config(self.emulator, log_config=None))
        _quiet_dropped_connections()
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="dni-emulator", daemon=True
        )
        thread.start()
        give_up = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > give_up:
                server.should_exit = True
                sock.close()
                raise DniError("the emulator server did not start")
            time.sleep(0.005)
        self._sock, self._server, self._thread = sock, server, thread
        return self

    def stop(self) -> None:
        """Stop serving, after the requests in flight are answered."""
        if self._server is None or self._thread is None or self._sock is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=START_TIMEOUT)
        self._sock.close()
        self._sock = self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
