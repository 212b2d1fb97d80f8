"""``gridex verify``: recompute published bundles and compare them with what was posted.

::

    gridex verify BUNDLE [BUNDLE ...]          # bundle folders (market.bundle)
    gridex verify --db engine.db [--interval K] [--out DIR]

With ``--db`` the bundles of every settled interval (or of ``--interval``)
are written from the replayed journal to ``--out`` (default: a temporary
folder) and verified. Each difference is printed on its own line; the exit
code is 0 when everything agrees, 1 when something differs and 2 for bad
input.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["bundles_from_journal", "register", "verify_journal"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``gridex verify``."""
    p = sub.add_parser(
        "verify",
        help="recompute interval bundles (clearing and settlement) and report differences",
    )
    p.add_argument("bundles", nargs="*", type=Path, metavar="BUNDLE", help="bundle folders")
    p.add_argument("--db", type=Path, help="an engine journal: verify its settled intervals")
    p.add_argument("--interval", type=int, help="with --db: only this interval")
    p.add_argument("--out", type=Path, help="with --db: write the bundles here (kept)")
    p.set_defaults(func=_verify)


def bundles_from_journal(
    db: Path, out: Path, interval: int | None = None, *, feeder: Any = None
) -> list[Path]:
    """Write the bundle of each settled interval of the journal ``db`` into ``out``.

    ``feeder`` is the feeder the journal names, when the caller has it loaded
    (loading a built-in feeder takes seconds).

    Raises:
        InputFileError: the journal cannot be read, or ``interval`` is not settled.
    """
    from grid import load_feeder
    from market.bundle import feeder_digest, write_bundle
    from market.engine.clearing import MarketClearing
    from market.errors import InputFileError
    from market.report.journal import read_journal

    run = read_journal(db)
    state = run.state
    settled = sorted(k for k, s in state.intervals.items() if s.settlement is not None)
    if interval is not None:
        if interval not in settled:
            raise InputFileError(f"--interval: interval {interval} is not settled in {db}")
        settled = [interval]
    feeder = feeder if feeder is not None else load_feeder(run.feeder)
    digest = feeder_digest(feeder)
    options = MarketClearing().options
    return [
        write_bundle(
            out / f"interval-{k}",
            state,
            k,
            feeder_name=run.feeder,
            feeder_sha256=digest,
            market=run.market,
            mechanism=run.mechanism,
            operator=run.operator_account,
            options=options,
        ).parent
        for k in settled
    ]


def verify_journal(
    db: Path, out: Path, *, ledger: object = None, feeder: Any = None
) -> tuple[int, list[str]]:
    """Bundle and verify every settled interval of the journal ``db`` (against ``ledger``).

    ``feeder``: the feeder the journal names, if the caller has it loaded;
    else it is loaded once (each bundle's manifest checks its digest).

    Returns:
        The number of intervals verified and every difference found.
    """
    from market.bundle import verify_bundle

    loaded: dict[str, Any] = {}
    folders = bundles_from_journal(db, out, feeder=feeder)
    differences: list[str] = []
    for folder in folders:
        on = feeder if feeder is not None else _feeder_of(folder, loaded)
        differences += verify_bundle(folder, feeder=on, ledger=ledger)
    return len(folders), differences


def _feeder_of(folder: Path, loaded: dict[str, Any]) -> Any:
    """The feeder a bundle's manifest names, loaded once per name into ``loaded``.

    None when the manifest cannot be read (:func:`market.bundle.verify_bundle`
    then reports it).
    """
    import json

    from grid import load_feeder

    try:
        name = str(json.loads((folder / "manifest.json").read_text())["feeder"]["name"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if name not in loaded:
        loaded[name] = load_feeder(name)
    return loaded[name]


def _verify(args: argparse.Namespace) -> int:
    from market.bundle import verify_bundle
    from market.errors import InputFileError

    started = time.perf_counter()
    try:
        if args.db is not None:
            if args.bundles:
                raise InputFileError("BUNDLE: give bundle folders or --db, not both")
            out = args.out or Path(tempfile.mkdtemp(prefix="gridex-bundles-"))
            folders = bundles_from_journal(args.db, out, args.interval)
        else:
            if not args.bundles:
                raise InputFileError("BUNDLE: give at least one bundle folder, or --db")
            folders = list(args.bundles)
        differences = 0
        loaded: dict[str, Any] = {}
        for folder in folders:
            for line in verify_bundle(folder, feeder=_feeder_of(folder, loaded)):
                print(line)
                differences += 1
    except InputFileError as exc:
        print(f"gridex verify: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    verdict = "all agree" if differences == 0 else f"{differences} difference(s)"
    print(f"{len(folders)} interval(s) verified in {seconds:.1f} s: {verdict}")
    return 0 if differences == 0 else 1
