"""Package names that load on first use (PEP 562 module ``__getattr__``).

A worker process imports only the modules scoring needs, and the command line
starts its workers before pandas, pyarrow and pydantic load; packages re-export
their public names through :func:`lazy_names` so importing one light module of a
package does not load the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_names(package: str, table: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``table[name]`` on first use.

    Raises (from the returned function):
        AttributeError: ``name`` is not in ``table``.
    """

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(table[name]), name)

    return __getattr__
