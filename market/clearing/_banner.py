"""Keep HiGHS's copyright banner off the operator's terminal.

HiGHS prints its banner from the C++ constructor of the first ``Highs``
object in a process, before any option can switch output off; later
instances print nothing. :func:`quiet_highs` makes that first instance with
the process's standard output file descriptor pointed at ``/dev/null``
(flushing C's stdio buffer inside the window), once, under a lock. Both
solver paths call it before they create a solver.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

__all__ = ["quiet_highs"]

_lock = threading.Lock()
_done = threading.Event()


def quiet_highs() -> None:
    """Create the process's first ``Highs`` object with stdout muted (once)."""
    if _done.is_set():
        return
    with _lock:
        if _done.is_set():
            return
        import highspy

        sys.stdout.flush()
        libc = ctypes.CDLL(None)
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            highspy.Highs()  # type: ignore[no-untyped-call]  # highspy leaves __init__ unannotated
            libc.fflush(None)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
        _done.set()
