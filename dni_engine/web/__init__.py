"""dni-engine on a website: the framework-neutral core and its adapters."""

__all__: list[str] = []
