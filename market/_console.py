"""The CLIs' rich console: terminal width on a terminal, no wrapping when piped.

rich wraps at 80 columns when its output is not a terminal, which breaks
lines of `gridex … | grep` and of logs; piped output gets a width no line
reaches instead, and soft wrapping, so each printed line stays one line.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["console", "plural"]

_PIPED_WIDTH = 10_000


def console(*, stderr: bool = False, **kwargs: Any) -> Any:
    """A :class:`rich.console.Console` for stdout (or stderr), unwrapped when piped."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if not stream.isatty():
        kwargs.setdefault("width", _PIPED_WIDTH)
        kwargs.setdefault("soft_wrap", True)
    return Console(stderr=stderr, **kwargs)


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 violation``, ``2 violations`` (``many`` for an irregular plural)."""
    return f"{count} {word if count == 1 else (many or word + 's')}"
