"""Build script: optionally compiles the per-visit hot path to C extensions with mypyc.

All metadata lives in pyproject.toml; this file only decides what to compile.

Compilation is opt-in: set ``DNI_ENGINE_COMPILE=1`` when building or installing
(``DNI_ENGINE_COMPILE=1 pip install .``). Without it the package installs as
pure Python and needs neither a C compiler nor the Python headers. Opting in is
an explicit request, so a failure to compile then fails the build with the
compiler's message rather than silently installing the slower pure build.

The compiled modules are type-checked and translated from the same sources; the
pure-Python modules stay the reference behaviour. In an editable install the
built ``.so`` files sit next to the ``.py`` files and are imported in their place,
so edits to a compiled module take effect only after reinstalling. An
editable install without the variable removes the extension files an earlier
compiled one left there, so that it really goes back to pure Python.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.editable_wheel import editable_wheel

# The modules on the per-visit path and the simulation loop: what compiling speeds up.
# Of the rules package only the matching modules: explain and lint stay plain Python.
HOT_PATH = [
    "dni_engine/_frozen.py",  # the base of the frozen dataclasses below (a native base class)
    "dni_engine/triggers.py",
    "dni_engine/referrers.py",
    "dni_engine/bots.py",
    "dni_engine/rules/precedence.py",
    "dni_engine/rules/visit.py",
    "dni_engine/rules/compile.py",
    "dni_engine/rules/matcher.py",
    "dni_engine/leases.py",
    "dni_engine/landing.py",
    "dni_engine/facts.py",
    "dni_engine/stores/memory.py",
    "dni_engine/stores/redis.py",
    "dni_engine/engine.py",
    "dni_engine/rewrite/stream.py",
    "dni_engine/traffic.py",
    "dni_engine/simulate.py",
]


def _compile_requested() -> bool:
    value = os.environ.get("DNI_ENGINE_COMPILE", "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise SystemExit(f"DNI_ENGINE_COMPILE must be 0 or 1, got {value!r}")


def _remove_stale_extensions() -> None:
    """Delete in-place extension modules of an earlier compiled editable install.

    Python imports ``engine.cpython-311-...so`` in preference to ``engine.py`` in
    the same folder, so leftovers would silently shadow the sources.
    """
    root = Path(__file__).resolve().parent
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    if not suffix:
        return
    stale = [root / f"{path[: -len('.py')]}{suffix}" for path in HOT_PATH]
    stale.append(root / f"dni_engine__mypyc{suffix}")
    for path in stale:
        path.unlink(missing_ok=True)


class _PureEditableWheel(editable_wheel):
    """An editable install that first clears a compiled one's leftovers."""

    def run(self) -> None:
        _remove_stale_extensions()
        super().run()


def _compiled_modules() -> list[Any]:
    # Imported only when asked, so a pure build never runs mypy.
    from mypyc.build import mypycify

    # The mypy settings (strict, ignored untyped imports) come from pyproject.toml.
    return list(mypycify(["--config-file", "pyproject.toml", *HOT_PATH], group_name="dni_engine"))


if _compile_requested():
    setup(ext_modules=_compiled_modules())
else:
    setup(cmdclass={"editable_wheel": _PureEditableWheel})
