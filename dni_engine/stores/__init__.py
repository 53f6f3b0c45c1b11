"""Where lease state lives: the :class:`Store` protocol and its implementations."""

from dni_engine.stores.base import Store, StoreError
from dni_engine.stores.memory import MemoryStore, StoreFootprint

__all__ = ["MemoryStore", "Store", "StoreError", "StoreFootprint"]
