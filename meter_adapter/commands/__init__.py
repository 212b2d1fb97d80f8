"""Subcommands of ``gridex-meter``; each module exposes ``register(subparsers)``."""
