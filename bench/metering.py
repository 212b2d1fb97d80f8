"""Readings per second through :meth:`market.metering.MeterLedger.apply`.

Prints one row per batch size (1, 10, 100): readings applied per second with
the readings built beforehand (the ledger alone), and with building the
``Reading`` values inside the timed loop (what the engine pays per reading
after decoding protobuf). Also the time to aggregate one interval and to
archive everything. The engine's end-to-end target over gRPC is 50,000
readings/s, so the ledger alone should be far above it.

Run: ``.venv/bin/python bench/metering.py [--meters 40] [--readings 200000]``
"""

from __future__ import annotations

import argparse
import tempfile
import time

from market.metering import MeterLedger, Reading

INTERVAL_S = 900
STEP_MS = 60_000  # one reading per minute per meter


def _streams(meters: int, per_meter: int) -> dict[str, list[tuple[int, int, int, int, int]]]:
    out: dict[str, list[tuple[int, int, int, int, int]]] = {}
    for m in range(meters):
        imp = exp = 0
        rows = []
        for seq in range(per_meter):
            imp += (seq * 7 + m) % 13
            exp += (seq * 5 + m) % 11
            rows.append((seq, seq * STEP_MS, imp, exp, (seq % 9) * 100 - 400))
        out[f"meter-{m:03d}"] = rows
    return out


def _ledger(meters: int) -> MeterLedger:
    ledger = MeterLedger(INTERVAL_S, skew_s=1e12)
    for m in range(meters):
        ledger.register_meter(f"meter-{m:03d}", "0x" + f"{m:040x}")
    return ledger


def run(meters: int, total: int) -> None:
    per_meter = max(total // meters, 1)
    streams = _streams(meters, per_meter)
    n = meters * per_meter
    print(f"{meters} meters x {per_meter} readings = {n} readings")
    print(f"{'batch':>6} {'prebuilt /s':>14} {'incl. Reading() /s':>20}")
    for batch in (1, 10, 100):
        prebuilt = {mid: [Reading(mid, *row) for row in rows] for mid, rows in streams.items()}
        batches = [
            (mid, readings[i : i + batch])
            for i in range(0, per_meter, batch)
            for mid, readings in prebuilt.items()
        ]
        ledger = _ledger(meters)
        t0 = time.perf_counter()
        for mid, chunk in batches:
            ledger.apply(mid, chunk, now_ms=0)
        applied_s = time.perf_counter() - t0

        raw = [
            (mid, rows[i : i + batch])
            for i in range(0, per_meter, batch)
            for mid, rows in streams.items()
        ]
        ledger = _ledger(meters)
        t0 = time.perf_counter()
        for mid, rows in raw:
            ledger.apply(mid, [Reading(mid, *row) for row in rows], now_ms=0)
        built_s = time.perf_counter() - t0
        print(f"{batch:>6} {n / applied_s:>14,.0f} {n / built_s:>20,.0f}")

    last = per_meter * STEP_MS // (INTERVAL_S * 1000) - 1
    t0 = time.perf_counter()
    ledger.metered(last)
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    ledger.metered(last - 1)
    again = time.perf_counter() - t0
    t0 = time.perf_counter()
    frame = ledger.metered_frame(0, last)
    every = time.perf_counter() - t0
    print(f"metered(one interval): {one * 1e3:.1f} ms first call, {again * 1e3:.1f} ms cached")
    print(f"metered_frame({last + 1} intervals, {frame.height} rows): {every * 1e3:.1f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ledger.archive(tmp)
        print(f"archive({n} readings): {(time.perf_counter() - t0) * 1e3:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=40)
    parser.add_argument("--readings", type=int, default=200_000)
    args = parser.parse_args()
    run(args.meters, args.readings)


if __name__ == "__main__":
    main()
