"""The built-in feeders' pandapower networks, built once per machine and kept on disk.

pandapower builds some built-in networks element by element: the Kerber
feeders take 1.4 s on this project's 2-core machine (and several seconds
while other threads hold the GIL), in every process that loads one (the
engine, ``gridex verify``, every CLI call). Unpickling the same network
takes 0.03 s. ``pandapower.from_json`` would take 0.7 s.

The file is ``<cache>/feeders/<name>-<key>.pickle`` where ``<cache>`` is
``$GRIDEX_CACHE_DIR``, else ``$XDG_CACHE_HOME/gridex``, else
``~/.cache/gridex``, and the key names the cache format, the Python and the
pandapower versions. As unpickling may run code, only a file this user owns
is read, in a folder created with mode 0700. A file that cannot be read is
built again and replaced; a folder that cannot be written only costs the build.
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
import tempfile
from collections.abc import Callable
from importlib import metadata
from typing import Any

from gridex.cache import cache_dir

__all__ = ["cached_net"]

logger = logging.getLogger(__name__)

#: Bump when what is stored changes (the factories' seeds, the network's fields).
FORMAT = 1


def _key() -> str:
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    return f"v{FORMAT}-{py}-pandapower{metadata.version('pandapower')}"


def cached_net(name: str, build: Callable[[], Any]) -> Any:
    """The network ``build()`` makes for built-in feeder ``name``, from the disk cache if there.

    ``build`` must be deterministic: its result is what every later call reads.
    """
    try:
        folder = cache_dir() / "feeders"
    except RuntimeError as exc:  # no home folder to put it in
        logger.info("feeder cache not used (%s)", exc)
        return build()
    path = folder / f"{name}-{_key()}.pickle"
    try:
        with path.open("rb") as fh:
            if os.fstat(fh.fileno()).st_uid != os.getuid():
                raise PermissionError("owned by another user")
            return pickle.load(fh)  # our own file in our own folder (module docstring)
    except FileNotFoundError:
        pass
    except Exception as exc:  # a truncated or foreign file: build it again
        logger.warning(
            "feeder cache %s not used (%s: %s); building the network", path, type(exc).__name__, exc
        )
    net = build()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{name}-", delete=False) as out:
            pickle.dump(net, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(out.name, path)  # atomic: a concurrent reader sees the old file or the new
    except OSError as exc:
        logger.info("feeder cache %s not written (%s)", path, exc)
    return net
