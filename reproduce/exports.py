"""A subpackage's public names, each imported from its module on first use.

The subpackages' `__init__` export their public functions this way, so that
importing one module of a package (or a package, for one of its names)
imports none of its siblings: the command line answers bad input before
TensorFlow loads, and the analysis never loads the training code.

Example, in a package's `__init__.py`:

```python
__getattr__, __all__ = exports(__name__, {"trainer": ("train", "RunResult")})
```
"""

from __future__ import annotations

import importlib
import sys


def exports(package: str, names_by_module: dict[str, tuple[str, ...]]):
    """Returns the package's module `__getattr__` (PEP 562) and its `__all__`.

    Args:
        package: the package's `__name__`.
        names_by_module: module name (relative to the package) -> the names it exports.
    """
    module_of = {name: module for module, names in names_by_module.items() for name in names}

    def __getattr__(name: str):
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module_of[name]}"), name)
        setattr(sys.modules[package], name, value)  # found directly from now on
        return value

    return __getattr__, sorted(module_of)
