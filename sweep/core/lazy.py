"""A package's public names, loaded when first used (PEP 562): each subpackage's
``__init__`` lists the names the layers above it use, module by module, without importing
a module (or TensorFlow) before one of its names is asked for."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def public_names(modules: Mapping[str, Sequence[str]]) -> list[str]:
    """Every name the package offers, sorted (its ``__all__``)."""
    return sorted(name for names in modules.values() for name in names)


def lazy_getattr(package: str, modules: Mapping[str, Sequence[str]]) -> Callable[[str], Any]:
    """The package's ``__getattr__``: a public name imported from its module when asked."""
    home = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{home[name]}"), name)

    return __getattr__
