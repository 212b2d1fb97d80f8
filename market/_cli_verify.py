"""``gridex verify``: recompute published bundles and compare them with what was posted.

::

    gridex verify BUNDLE [BUNDLE ...]          # bundle folders (market.bundle)
    gridex verify --db engine.db [--interval K] [--out DIR]
    ... [--rpc-url URL --deployment deployment.json [--chain-id N]]

With ``--db`` the bundles of every settled interval (or of ``--interval``)
are written from the replayed journal to ``--out`` (default: a temporary
folder) and verified. With ``--rpc-url`` and ``--deployment`` (the document
``gridex chain deploy --out`` writes) every posting is also compared with
the Settlement contract's record on that node: the hash (each posting's
manifest rebuilt from the bundle), the deltas and the fee; with ``--db`` an
interval posted on chain that the journal did not settle is a difference too. Each difference
is printed on its own line; a progress line per interval goes to stderr. The
exit code is 0 when everything agrees, 1 when something differs and 2 for
bad input (or a chain that cannot be read).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["bundles_from_journal", "register", "unbundled", "verify_folders", "verify_journal"]


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
    p.add_argument("--rpc-url", help="JSON-RPC node to compare every posting with")
    p.add_argument(
        "--deployment",
        type=Path,
        help="with --rpc-url: deployment document written by `gridex chain deploy --out`",
    )
    p.add_argument("--chain-id", type=int, help="with --rpc-url: refuse a node with another id")
    p.set_defaults(func=_verify)


def bundles_from_journal(
    db: Path, out: Path, interval: int | None = None, *, feeders: _Feeders | None = None
) -> list[Path]:
    """Write the bundle of each settled interval of the journal ``db`` into ``out``.

    ``feeders`` keeps the loaded feeder for verifying the bundles after.

    Raises:
        InputFileError: the journal cannot be read, or ``interval`` is not settled.
    """
    from market.bundle import write_bundle
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
    _, digest = (feeders or _Feeders()).load(run.feeder)
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


class _Feeders:
    """Each named feeder loaded, and its digest taken, once for all bundles."""

    def __init__(self) -> None:
        self._loaded: dict[str, tuple[Any, str]] = {}
        self._views: dict[str, Any] = {}  # BaseViews per feeder name

    def views(self, feeder: Any) -> Any:
        """The views of journaled bases on ``feeder`` (shared by all its bundles)."""
        from market.forecast import BaseViews

        if feeder.name not in self._views or self._views[feeder.name].feeder is not feeder:
            self._views[feeder.name] = BaseViews(feeder)
        return self._views[feeder.name]

    def add(self, feeder: Any) -> None:
        """Use the already loaded ``feeder`` for bundles that name it."""
        from market.manifest import feeder_digest

        self._loaded[feeder.name] = (feeder, feeder_digest(feeder))

    def load(self, name: str) -> tuple[Any, str]:
        """The feeder ``name`` (built-in or a pandapower JSON file) and its digest."""
        from grid import load_feeder
        from market.manifest import feeder_digest

        if name not in self._loaded:
            feeder = load_feeder(name)
            self._loaded[name] = (feeder, feeder_digest(feeder))
        return self._loaded[name]

    def __call__(self, folder: Path) -> tuple[Any, str]:
        """The feeder a bundle's manifest names, and its digest."""
        import json

        from market.errors import InputFileError

        try:
            index = json.loads((folder / "manifest.json").read_text())
            name = str(index["inputs"]["feeder"]["name"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputFileError(f"bundle {folder}: cannot read its manifest ({exc!r})") from exc
        return self.load(name)


def verify_folders(
    folders: list[Path],
    *,
    chain: Any = None,
    progress: Callable[[str], None] | None = None,
    feeders: _Feeders | None = None,
) -> Iterator[str]:
    """Verify each bundle folder (against ``chain``, a :class:`market.bundle.ChainPostings`);
    yield every difference. ``progress`` is told each interval as it is done."""
    from market.bundle import verify_bundle

    feeders = feeders or _Feeders()
    started = time.perf_counter()
    for i, folder in enumerate(folders, 1):
        feeder, digest = feeders(folder)
        found = verify_bundle(
            folder, feeder=feeder, feeder_sha256=digest, chain=chain, views=feeders.views(feeder)
        )
        yield from found
        if progress is not None:
            progress(
                f"[{i}/{len(folders)}] {folder.name}: "
                + ("agrees" if not found else f"{len(found)} difference(s)")
                + f" ({time.perf_counter() - started:.1f} s)"
            )


def unbundled(chain: Any, folders: list[Path]) -> list[str]:
    """A line for each interval posted on ``chain`` that no bundle (no settled
    interval of the journal) accounts for."""
    bundled = {f.name for f in folders}
    return [
        f"interval {k}: posted on chain, but not settled in the journal"
        for k in chain.intervals()
        if f"interval-{k}" not in bundled
    ]


def verify_journal(
    db: Path, out: Path, *, ledger: object = None, feeder: Any = None
) -> tuple[int, list[str]]:
    """Bundle and verify every settled interval of the journal ``db`` (against ``ledger``,
    a :class:`contracts.Ledger`).

    ``feeder``: the feeder the journal names, if the caller has it loaded
    (loading a built-in feeder takes seconds).

    Returns:
        The number of intervals verified and every difference found.
    """
    from market.bundle import ChainPostings

    feeders = _Feeders()
    if feeder is not None:
        feeders.add(feeder)
    folders = bundles_from_journal(db, out, feeders=feeders)
    chain = None if ledger is None else ChainPostings(ledger)
    found = list(verify_folders(folders, chain=chain, feeders=feeders))
    return len(folders), found + ([] if chain is None else unbundled(chain, folders))


def _chain(args: argparse.Namespace) -> Any:
    """The postings on the node ``--rpc-url`` names, or None without one."""
    from market.errors import InputFileError

    if args.rpc_url is None:
        if args.deployment is not None:
            raise InputFileError("--deployment: needs --rpc-url (the node to read it on)")
        return None
    if args.deployment is None:
        raise InputFileError("--rpc-url: needs --deployment (where the contracts are)")
    from contracts import Chain, Deployment, Ledger
    from market.bundle import ChainPostings

    chain = Chain.connect(args.rpc_url, expected_chain_id=args.chain_id)
    return ChainPostings(Ledger(chain, Deployment.load(args.deployment)))


def _verify(args: argparse.Namespace) -> int:
    from contracts.errors import ChainError
    from market.errors import InputFileError

    started = time.perf_counter()
    feeders = _Feeders()
    try:
        if args.db is not None:
            if args.bundles:
                raise InputFileError("BUNDLE: give bundle folders or --db, not both")
            out = args.out or Path(tempfile.mkdtemp(prefix="gridex-bundles-"))
            folders = bundles_from_journal(args.db, out, args.interval, feeders=feeders)
        else:
            if not args.bundles:
                raise InputFileError("BUNDLE: give at least one bundle folder, or --db")
            folders = list(args.bundles)
        chain = _chain(args)
        differences = 0
        for line in verify_folders(
            folders,
            chain=chain,
            progress=lambda text: print(text, file=sys.stderr, flush=True),
            feeders=feeders,
        ):
            print(line, flush=True)
            differences += 1
        if chain is not None and args.db is not None and args.interval is None:
            for line in unbundled(chain, folders):
                print(line, flush=True)
                differences += 1
    except InputFileError as exc:
        print(f"gridex verify: {exc}", file=sys.stderr)
        return 2
    except ChainError as exc:
        print(f"gridex verify: chain: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    verdict = "all agree" if differences == 0 else f"{differences} difference(s)"
    against = "" if args.rpc_url is None else f" against {args.rpc_url}"
    print(f"{len(folders)} interval(s) verified{against} in {seconds:.1f} s: {verdict}")
    return 0 if differences == 0 else 1
