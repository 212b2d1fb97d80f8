"""The one folder where gridex keeps what it can rebuild (compiled contracts, built feeders).

``$GRIDEX_CACHE_DIR``, else ``$XDG_CACHE_HOME/gridex``, else ``~/.cache/gridex``.
Deleting it is always safe.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """The cache folder (see the module docstring).

    Raises:
        RuntimeError: no variable is set and the home folder cannot be found.
    """
    explicit = os.environ.get("GRIDEX_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "gridex"
