"""The results folder of a backtest: one parquet file per (feeder, day), written atomically.

Layout::

    <folder>/backtest.json                         the spec the files answer
    <folder>/intervals/<feeder>__<YYYY-MM-DD>.parquet   one per finished (feeder, day)

A file is written to a hidden temporary name in the same folder (ending in
``.part``, so no ``*.parquet`` glob sees it), flushed to disk and then
renamed into place (``os.replace``, atomic on POSIX and
Windows), so a file under its final name is always complete: a run killed
at any moment leaves finished days and, at worst, a temporary file that the
next run removes. A (feeder, day) is done exactly when its file exists,
which is what a rerun skips.

The folder is a dataset: ``polars.read_parquet("<folder>/intervals/*.parquet")``
(or :func:`read_intervals`) reads every interval of every feeder and day.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path

import polars as pl

from market.backtest.day import SCHEMA
from market.backtest.spec import BacktestSpec
from market.errors import ConfigError, InputFileError

__all__ = ["ResultStore", "read_intervals", "temporary"]

_TMP_PREFIX = ".tmp-"


class ResultStore:
    """One backtest's results folder (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.intervals = self.folder / "intervals"

    def path(self, feeder: str, day: dt.date) -> Path:
        """Where the file of (``feeder``, ``day``) lives."""
        return self.intervals / f"{feeder}__{day.isoformat()}.parquet"

    def is_done(self, feeder: str, day: dt.date) -> bool:
        """Whether (``feeder``, ``day``) has its complete file."""
        return self.path(feeder, day).is_file()

    def open(self, spec: BacktestSpec) -> None:
        """Create the folder for ``spec``, or check that it already answers the same question.

        Removes temporary files a killed run left behind.

        Raises:
            ConfigError: the folder cannot be created, or holds results of a
                backtest that differs in the named fields.
        """
        try:
            self.intervals.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"out: cannot create {self.folder} ({exc.strerror or exc})") from exc
        manifest = self.folder / "backtest.json"
        if manifest.is_file():
            try:
                recorded = json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"out: {manifest} is not a backtest record ({exc})") from exc
            differ = spec.differences(recorded)
            if differ:
                raise ConfigError(
                    f"out: {self.folder} holds a backtest that differs in "
                    f"{', '.join(differ)}; choose another folder (its finished days "
                    "would not answer this question)"
                )
            merged = spec.to_dict()
            known = {f["name"]: f for f in recorded.get("feeders", [])}
            known.update({f["name"]: f for f in merged["feeders"]})
            merged["feeders"] = sorted(known.values(), key=lambda f: str(f["name"]))
            merged["start"] = min(str(recorded.get("start", merged["start"])), merged["start"])
        else:
            merged = spec.to_dict()
        _write_atomic(manifest, json.dumps(merged, indent=2, sort_keys=True).encode() + b"\n")
        for stale in self.intervals.glob(_TMP_PREFIX + "*"):
            stale.unlink(missing_ok=True)

    def write(self, table: pl.DataFrame, feeder: str, day: dt.date) -> Path:
        """Write the interval table of (``feeder``, ``day``) atomically; return its path."""
        path = self.path(feeder, day)
        tmp = temporary(path)
        try:
            table.write_parquet(tmp, compression="zstd", statistics=True)
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path


def temporary(path: Path) -> Path:
    """A fresh temporary name for writing ``path``: hidden, in the same folder, never
    ending in ``.parquet`` (so no glob of the dataset picks up a partial file)."""
    return path.with_name(f"{_TMP_PREFIX}{uuid.uuid4().hex}-{path.name}.part")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = temporary(path)
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_intervals(folder: Path) -> pl.DataFrame:
    """Every interval row of a results folder, sorted by feeder and interval (empty: none yet).

    Raises:
        InputFileError: a result file cannot be read.
    """
    files = sorted((Path(folder) / "intervals").glob("*.parquet"))
    if not files:
        return pl.DataFrame(schema=SCHEMA)
    try:
        frame = pl.read_parquet(Path(folder) / "intervals" / "*.parquet")
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputFileError(f"{folder}: cannot read the results ({exc})") from exc
    return frame.sort("feeder", "interval")
