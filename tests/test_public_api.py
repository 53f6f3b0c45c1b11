"""The public surface: every module's ``__all__``, the facade, the README's imports, the error tree.

Every public module of the package (no part of its name starts with ``_``)
declares ``__all__``: the names a user is meant to import. These tests check
that the lists are true (each name exists, is public and, for functions and
classes, documented), that ``dni_engine`` itself exports exactly what it
defines, that every ``from dni_engine... import X`` in the README imports an
exported name, and that the exception tree drawn in :mod:`dni_engine.errors`
is the package's real one.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import inspect
import pkgutil
import re
import sys
from types import ModuleType

import pytest

import dni_engine
from dni_engine.errors import DniError
from tests.conftest import ROOT


def _public(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("."))


def _all_modules() -> list[ModuleType]:
    """Every module of the package, imported (the optional extras are in the dev venv)."""
    modules = [dni_engine]
    for info in pkgutil.walk_packages(dni_engine.__path__, "dni_engine."):
        if info.name.rsplit(".", 1)[-1] != "__main__":
            modules.append(importlib.import_module(info.name))
    return modules


MODULES = _all_modules()
PUBLIC_MODULES = [module for module in MODULES if _public(module.__name__)]


def _exported(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    assert names is not None, f"{module.__name__} has no __all__"
    return list(names)


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_every_public_module_lists_its_public_names(module: ModuleType) -> None:
    names = _exported(module)
    assert all(isinstance(name, str) for name in names)
    assert len(names) == len(set(names)), f"{module.__name__}.__all__ repeats a name"
    assert [name for name in names if name.startswith("_")] == []
    assert [name for name in names if not hasattr(module, name)] == []


def _compiled(obj: object) -> bool:
    """True for an object of a module built by mypyc, which may not keep docstrings."""
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    path = str(getattr(module, "__file__", "") or "")
    return path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def _own_docstring(obj: object) -> str | None:
    """The docstring written for ``obj``: not inherited, nor made up by dataclass or NamedTuple."""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    if not isinstance(doc, str) or not doc.strip():
        return None
    if inspect.isclass(obj) and doc.startswith(f"{obj.__name__}("):
        return None  # the signature dataclasses and NamedTuples use as a stand-in
    return doc


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_every_exported_function_and_class_has_a_docstring(module: ModuleType) -> None:
    undocumented = []
    for name in _exported(module):
        obj = getattr(module, name)
        if isinstance(obj, ModuleType) or not (inspect.isclass(obj) or callable(obj)):
            continue  # constants, type aliases and submodules
        if not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue  # instances that happen to be callable (the click group, clocks)
        if _own_docstring(obj) is None and not _compiled(obj):
            undocumented.append(name)
    assert undocumented == []


def _is_own_submodule(name: str, value: object) -> bool:
    return isinstance(value, ModuleType) and value.__name__ == f"dni_engine.{name}"


def test_the_facade_exports_exactly_its_public_names() -> None:
    # Submodules become attributes of the package once imported; they are not
    # exports. Anything else public in vars(dni_engine), a stray stdlib module
    # included, must be listed.
    public = sorted(
        name
        for name, value in vars(dni_engine).items()
        if not name.startswith("_") and not _is_own_submodule(name, value)
    )
    assert sorted(dni_engine.__all__) == public
    assert len(dni_engine.__all__) == len(set(dni_engine.__all__))


README = (ROOT / "README.md").read_text(encoding="utf-8")
_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _readme_imports() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for block in _PYTHON_BLOCK.findall(README):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dni_engine"):
                found.extend((node.module or "", alias.name) for alias in node.names)
    return found


def _readme_references() -> list[tuple[str, str]]:
    """Dotted names in the README's inline code: ``dni_engine.simulate.simulate``."""
    found: list[tuple[str, str]] = []
    for dotted in re.findall(r"`(dni_engine(?:\.\w+)+)`", README):
        parts = dotted.split(".")
        # The longest importable prefix is the module; the next part its export.
        for cut in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:cut])
            try:
                importlib.import_module(module)
            except ImportError:
                continue
            if not isinstance(getattr(sys.modules[module], parts[cut], None), ModuleType):
                found.append((module, parts[cut]))
            break
    return found


README_IMPORTS = _readme_imports()


def test_the_readme_imports_something() -> None:
    assert ("dni_engine", "compile_pools") in README_IMPORTS


@pytest.mark.parametrize(
    ("module", "name"),
    sorted(set(README_IMPORTS + _readme_references())),
    ids=lambda value: str(value),
)
def test_what_the_readme_imports_is_exported(module: str, name: str) -> None:
    assert name in _exported(importlib.import_module(module))


def test_the_readme_names_missing_extra_and_the_facade_exports_it() -> None:
    assert "`MissingExtra`" in README
    assert "MissingExtra" in dni_engine.__all__


_TREE_LINE = re.compile(
    r"^(?P<indent>\s*)(?P<branch>(?:[│ ]   )*(?:[├└]── )?)"
    r"(?P<name>\w+)(?: \[(?P<bases>[^\]]+)\])?\s+(?P<module>dni_engine[\w.]*)$"
)


def _drawn_tree() -> dict[str, tuple[str | None, tuple[str, ...], str]]:
    """``{class name: (parent, other bases, module)}`` as :mod:`dni_engine.errors` draws it."""
    doc = sys.modules["dni_engine.errors"].__doc__ or ""
    drawn: dict[str, tuple[str | None, tuple[str, ...], str]] = {}
    parents: list[str] = []
    for line in doc.splitlines():
        match = _TREE_LINE.match(line)
        if match is None:
            continue
        depth = len(match["branch"]) // 4
        del parents[depth:]
        name = match["name"]
        assert name not in drawn, f"{name} is drawn twice"
        bases = tuple(b.strip() for b in (match["bases"] or "").split(",") if b.strip())
        drawn[name] = (parents[-1] if parents else None, bases, match["module"])
        parents.append(name)
    return drawn


def _error_classes() -> dict[str, type[DniError]]:
    """Every public DniError subclass the package defines (DniError itself included)."""
    found: dict[str, type[DniError]] = {}
    stack: list[type[DniError]] = [DniError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith("dni_engine") and _public(f"{cls.__module__}.{cls.__name__}"):
            assert found.get(cls.__name__, cls) is cls, f"two error classes {cls.__name__}"
            found[cls.__name__] = cls
    return found


def _base_name(base: type) -> str:
    if base.__module__ == "builtins":
        return base.__qualname__
    return f"{base.__module__}.{base.__name__}"


def test_the_drawn_exception_tree_names_every_error_class() -> None:
    assert set(_drawn_tree()) == set(_error_classes())


def test_the_drawn_exception_tree_is_the_real_one() -> None:
    classes = _error_classes()
    for name, (parent, bases, module) in _drawn_tree().items():
        cls = classes[name]
        assert cls.__module__ == module, name
        family = [b.__name__ for b in cls.__bases__ if issubclass(b, DniError)]
        assert family == ([parent] if parent else []), name
        others = [_base_name(b) for b in cls.__bases__ if not issubclass(b, DniError)]
        assert others == (list(bases) if parent else ["Exception", *bases]), name
