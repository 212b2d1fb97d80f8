"""Polars side of the meter ledger: reading frames, boundary counters, parquet archive.

Private to :mod:`market.metering`. Nothing here runs per reading: the ledger
buffers readings in ``array('q')`` columns and hands them over in bulk.
"""

from __future__ import annotations

import os
import re
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

__all__ = [
    "ARCHIVE_GLOB",
    "READINGS_SCHEMA",
    "archive_end",
    "build_frame",
    "metered_frame",
    "read_archive",
    "write_archive",
]

#: Columns of a readings frame and of every archive file.
READINGS_SCHEMA: dict[str, pl.DataType] = {
    "meter_id": pl.String(),
    "seq": pl.Int64(),
    "timestamp_ms": pl.Int64(),
    "energy_import_wh": pl.Int64(),
    "energy_export_wh": pl.Int64(),
    "power_w": pl.Int64(),
}
_INT_COLUMNS = list(READINGS_SCHEMA)[1:]

#: Archive files: ``readings-<first row>-<end row>.parquet``, rows numbered from
#: 0 in the order the ledger applied them, end exclusive, zero-padded so that
#: lexical order is row order.
ARCHIVE_GLOB = "readings-*.parquet"
_ARCHIVE_RE = re.compile(r"^readings-(\d{12})-(\d{12})\.parquet$")


def build_frame(names: Sequence[str], columns: Sequence[Sequence[array[int]]]) -> pl.DataFrame:
    """A readings frame from per-meter column buffers.

    Args:
        names: meter id of each block.
        columns: for each block, the five int64 buffers (seq, timestamp_ms,
            energy_import_wh, energy_export_wh, power_w), equally long.

    Returns:
        One row per reading, blocks in the given order, columns as in
        :data:`READINGS_SCHEMA`.
    """
    counts = np.array([len(cols[0]) for cols in columns], dtype=np.int64)
    data: dict[str, object] = {}
    for i, name in enumerate(_INT_COLUMNS):
        parts = [np.frombuffer(cols[i], dtype=np.int64) for cols in columns]
        data[name] = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    block = np.repeat(np.arange(len(names), dtype=np.uint32), counts)
    meter = pl.Series("meter_id", list(names), dtype=pl.String).gather(block)
    ints = pl.DataFrame(data, schema={k: READINGS_SCHEMA[k] for k in _INT_COLUMNS})
    return ints.insert_column(0, meter)


def _counter_at(column: str) -> pl.Expr:
    """Cumulative counter at boundary ``t_ms``, rounded once to an integer Wh.

    Between the last reading at or before the boundary (t0, c0) and the first
    at or after it (t1, c1), linear interpolation rounded half up, in exact
    128-bit integer arithmetic: ``c0 + (2·(c1−c0)·(t−t0) + span) // (2·span)``.
    Before a meter's first reading the counter is that reading's value, after
    its last reading the last value, without readings 0. The value is a
    function of the boundary alone, so consecutive intervals telescope.
    """
    t = pl.col("t_ms").cast(pl.Int128)
    t0 = pl.col("t0").cast(pl.Int128)
    t1 = pl.col("t1").cast(pl.Int128)
    c0 = pl.col(f"{column}_0").cast(pl.Int128)
    c1 = pl.col(f"{column}_1").cast(pl.Int128)
    span = pl.when(t1 > t0).then(t1 - t0).otherwise(pl.lit(1, dtype=pl.Int128))
    interp = c0 + (2 * (c1 - c0) * (t - t0) + span) // (2 * span)
    value = (
        pl.when(pl.col("t0").is_null())
        .then(c1)
        .when(pl.col("t1").is_null() | (pl.col("t0") == pl.col("t_ms")))
        .then(c0)
        .otherwise(interp)
    )
    return value.fill_null(0).cast(pl.Int64)


def metered_frame(
    readings: pl.DataFrame, meter_ids: Sequence[str], first: int, last: int, interval_ms: int
) -> pl.DataFrame:
    """Metered energy of every meter in intervals ``first..last`` (inclusive).

    Args:
        readings: a readings frame sorted by timestamp within each meter.
        meter_ids: the meters to report (those without readings report 0).
        first: first interval id.
        last: last interval id, ``>= first``.
        interval_ms: interval length in milliseconds.

    Returns:
        Columns meter_id, interval, import_wh, export_wh (Int64 Wh, counter at
        the interval end minus counter at its start) and complete (a reading
        exists at or after the interval end), sorted by meter_id then interval.
    """
    bounds = pl.DataFrame(
        {"t_ms": [k * interval_ms for k in range(first, last + 2)]}, schema={"t_ms": pl.Int64}
    )
    grid = (
        pl.DataFrame({"meter_id": sorted(meter_ids)}, schema={"meter_id": pl.String})
        .join(bounds, how="cross")
        .sort("meter_id", "t_ms")
    )
    right = readings.select(
        "meter_id",
        pl.col("timestamp_ms").alias("t_ms"),
        pl.col("timestamp_ms").alias("t"),
        "energy_import_wh",
        "energy_export_wh",
    )
    joined = grid
    strategies: tuple[tuple[str, Literal["backward", "forward"]], ...] = (
        ("0", "backward"),
        ("1", "forward"),
    )
    for suffix, strategy in strategies:
        side = right.rename(
            {
                "t": f"t{suffix}",
                "energy_import_wh": f"imp_{suffix}",
                "energy_export_wh": f"exp_{suffix}",
            }
        )
        joined = joined.join_asof(
            side, on="t_ms", by="meter_id", strategy=strategy, check_sortedness=False
        )
    counters = joined.select(
        "meter_id",
        "t_ms",
        imp=_counter_at("imp"),
        exp=_counter_at("exp"),
        complete=pl.col("t1").is_not_null(),
    )
    return (
        counters.with_columns(
            import_wh=pl.col("imp").diff().over("meter_id"),
            export_wh=pl.col("exp").diff().over("meter_id"),
            interval=(pl.col("t_ms") // interval_ms - 1),
        )
        .filter(pl.col("t_ms") > first * interval_ms)
        .select("meter_id", "interval", "import_wh", "export_wh", "complete")
    )


def archive_end(directory: Path) -> int:
    """The end row of the archive files in ``directory`` (0 if there are none)."""
    end = 0
    if directory.is_dir():
        for entry in directory.iterdir():
            match = _ARCHIVE_RE.match(entry.name)
            if match:
                end = max(end, int(match.group(2)))
    return end


def write_archive(directory: Path, frame: pl.DataFrame, start: int) -> Path:
    """Write ``frame`` (rows ``start..start+len``) as one new archive file.

    The file is written under a temporary name and renamed, so a crash never
    leaves a partial file that matches :data:`ARCHIVE_GLOB`.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"readings-{start:012d}-{start + frame.height:012d}.parquet"
    tmp = path.with_name(path.name + ".tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, path)
    return path


def read_archive(directory: str | os.PathLike[str]) -> pl.DataFrame:
    """Every archived reading in ``directory``, in the order it was applied.

    Returns:
        A frame with the columns of :data:`READINGS_SCHEMA` (empty if the
        directory holds no archive file).
    """
    folder = Path(directory)
    files = sorted(p for p in folder.glob(ARCHIVE_GLOB) if _ARCHIVE_RE.match(p.name))
    if not files:
        return pl.DataFrame(schema=READINGS_SCHEMA)
    return pl.read_parquet(files).select(list(READINGS_SCHEMA))
