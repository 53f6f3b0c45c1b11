"""A local emulator of the vendor's Number Pool API, for development, tests and CI.

``Emulator().app`` is an ASGI app implementing the API's pool paths and the
referrer catalogue, with numbers drawn from a realistic inventory
(:mod:`~dni_engine.emulator.inventory`) and optional injected faults
(:class:`Faults`). Serve it with ``dni-engine emulator``, in a background
thread with :class:`EmulatorServer`, or in-process through
``httpx.ASGITransport``.
"""

from dni_engine.emulator.app import Emulator, referrer_catalogue
from dni_engine.emulator.faults import ConnectionDropped, Faults
from dni_engine.emulator.inventory import DEFAULT_STOCK, Inventory
from dni_engine.emulator.refusal import NumbersUnavailable, Refusal
from dni_engine.emulator.server import EmulatorServer, serve

__all__ = [
    "DEFAULT_STOCK",
    "ConnectionDropped",
    "Emulator",
    "EmulatorServer",
    "Faults",
    "Inventory",
    "NumbersUnavailable",
    "Refusal",
    "referrer_catalogue",
    "serve",
]
