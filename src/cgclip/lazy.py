"""Lazy re-exports for package ``__init__`` modules (heavy submodules are imported on first attribute access) and
aliases that keep the import paths of moved modules working for one release."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for ``package`` resolving each name in ``exports`` (name → module) lazily.

    A resolved value is cached in ``namespace`` (the package's ``globals()``).
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__


class _MovedLoader(importlib.abc.Loader):
    """Loads an old module name as the module it moved to (same object), with a DeprecationWarning."""

    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new
        self.spec: Any = None

    def create_module(self, spec: Any) -> Any:
        warnings.warn(
            f"{self.old} moved to {self.new}; the old path will be removed in the next release",
            DeprecationWarning,
            stacklevel=3,
        )
        module = importlib.import_module(self.new)
        self.spec = module.__spec__
        return module

    def exec_module(self, module: Any) -> None:
        module.__spec__ = self.spec  # the import machinery set the alias's spec; keep the module's own


class _MovedFinder(importlib.abc.MetaPathFinder):
    def __init__(self, moved: dict[str, str]) -> None:
        self.moved = moved

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        new = self.moved.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _MovedLoader(fullname, new))


def alias_moved_modules(moved: dict[str, str]) -> None:
    """Keep ``import old.name`` working for modules that moved (``{old: new}``): the old name loads the new module
    (the same object) and warns once that the path is deprecated."""
    if not any(isinstance(f, _MovedFinder) and f.moved is moved for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder(moved))
