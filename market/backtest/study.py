"""Parameter sweeps: a small TOML study file, each point of its grid a backtest.

A study file::

    [backtest]                    # the base backtest: any BacktestSpec field
    feeders = ["kerber-dorfnetz", "cigre-lv"]   # names, JSON files or folders
    start = 2026-06-01
    days = 7
    participants = 30

    [sweep]                       # each key lists values; every combination is a point
    pv_penetration = [0.2, 0.4, 0.6, 0.8, 1.0]
    mechanism = ["nodal", "uniform"]

    [[sweep.tariff]]              # named tariffs: any of retail_price,
    name = "standard"             # feed_in_price, grid_fee_per_kwh
    retail_price = 300000
    feed_in_price = 80000

    [[sweep.tariff]]
    name = "network fee"
    grid_fee_per_kwh = 20000

Every problem is reported at once, each naming its key as written in the
file (``sweep.pv_penetration[5]``, ``sweep.tariff[1].retail_price``,
``backtest.dayz``), before anything runs.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from market.backtest.spec import BacktestSpec, resolve_feeders
from market.errors import ConfigError

__all__ = ["Study", "StudyPoint", "load_study", "parse_study"]

_TARIFF_KEYS = ("retail_price", "feed_in_price", "grid_fee_per_kwh")
_SPEC_KEYS = tuple(f.name for f in fields(BacktestSpec))
#: Keys a sweep may vary: every scalar field (the period and feeders stay fixed).
_SWEEP_KEYS = tuple(k for k in _SPEC_KEYS if k not in ("feeders", "start", "days"))
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class StudyPoint:
    """One point of the sweep.

    Attributes:
        key: folder name of the point's results, from its swept values.
        values: the swept key → value of this point (a tariff by its name).
        spec: the point's backtest.
    """

    key: str
    values: dict[str, Any]
    spec: BacktestSpec


@dataclass(frozen=True)
class Study:
    """A parsed study: its base backtest, the swept keys and every point."""

    name: str
    base: BacktestSpec
    swept: tuple[str, ...]
    points: tuple[StudyPoint, ...]


def load_study(path: Path) -> Study:
    """Read and validate a study file.

    Raises:
        ConfigError: the file cannot be read, is not TOML, or breaks a rule
            (every problem listed, each naming its key).
    """
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"study: cannot read {path} ({exc.strerror or exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"study: {path} is not valid TOML ({exc})") from exc
    return parse_study(raw, name=Path(path).stem)


def parse_study(raw: dict[str, Any], *, name: str = "study") -> Study:
    """Validate a study given as parsed TOML (see the module docstring).

    Raises:
        ConfigError: every problem, each naming its key.
    """
    problems: list[str] = []
    for key in raw:
        if key not in ("backtest", "sweep"):
            problems.append(f"{key}: unknown table (expected [backtest] and [sweep])")
    base_raw = raw.get("backtest", {})
    sweep_raw = raw.get("sweep", {})
    if not isinstance(base_raw, dict):
        raise ConfigError("backtest: must be a table")
    if not isinstance(sweep_raw, dict):
        raise ConfigError("sweep: must be a table")
    given = _base(base_raw, problems)
    base = None if given is None else BacktestSpec(**given)
    axes: list[tuple[str, list[tuple[Any, dict[str, Any]]]]] = []
    for key, listed in sweep_raw.items():
        axis = _axis(key, listed, given, problems)
        if axis is not None:
            axes.append((key, axis))
    if problems:
        raise ConfigError("; ".join(problems))
    assert base is not None  # no problems: the base was built
    assert given is not None
    points = []
    for combo in itertools.product(*(axis for _, axis in axes)):
        values: dict[str, Any] = {}
        changes: dict[str, Any] = {}
        for (key, _), (label, change) in zip(axes, combo, strict=True):
            changes.update(change)
            values[key] = label
        try:
            # from the file's values, so a swept scenario brings its own
            # defaults for every field the file leaves to it
            spec = BacktestSpec(**{**given, **changes})
        except ConfigError as exc:
            where = ", ".join(f"sweep.{k} = {v!r}" for k, v in values.items())
            problems.append(f"{where}: together they break a rule ({exc})")
            continue
        slug = "__".join(f"{k}-{_SLUG.sub('_', str(v))}" for k, v in values.items()) or "base"
        points.append(StudyPoint(slug, values, spec))
    if problems:
        raise ConfigError("; ".join(problems))
    return Study(name=name, base=base, swept=tuple(k for k, _ in axes), points=tuple(points))


def _base(raw: dict[str, Any], problems: list[str]) -> dict[str, Any] | None:
    """The base backtest's arguments as given (feeders resolved); None after a problem."""
    known = {}
    for key, value in raw.items():
        if key not in _SPEC_KEYS:
            problems.append(
                f"backtest.{key}: unknown key (expected one of {', '.join(_SPEC_KEYS)})"
            )
        else:
            known[key] = value
    feeders = known.pop("feeders", None)
    if feeders is None:
        problems.append("backtest.feeders: required (built-in names, JSON files or folders)")
        return None
    if not isinstance(feeders, list) or not all(isinstance(f, str) for f in feeders):
        problems.append(f"backtest.feeders: must be a list of strings, got {feeders!r}")
        return None
    try:
        refs = tuple(resolve_feeders(feeders, key="backtest.feeders"))
    except ConfigError as exc:
        problems.append(str(exc))
        return None
    if "start" in known and not isinstance(known["start"], dt.date):
        problems.append(f"backtest.start: must be a TOML date (2026-06-01), got {known['start']!r}")
        return None
    spec_problems = _problems(feeders=refs, **known)
    if spec_problems:
        problems.extend(f"backtest.{p}" for p in spec_problems)
        return None
    return {"feeders": refs, **known}


def _problems(**values: Any) -> list[str]:
    try:
        BacktestSpec(**values)
    except ConfigError as exc:
        return str(exc).split("; ")
    return []


def _axis(
    key: str, values: Any, base: dict[str, Any] | None, problems: list[str]
) -> list[tuple[Any, dict[str, Any]]] | None:
    """(label, spec changes) per value of sweep key ``key``; None after a problem."""
    if key == "tariff":
        return _tariffs(values, base, problems)
    if key not in _SWEEP_KEYS:
        problems.append(
            f"sweep.{key}: cannot be swept (expected one of {', '.join(_SWEEP_KEYS)}, "
            "or an array of [[sweep.tariff]] tables)"
        )
        return None
    if not isinstance(values, list) or not values:
        problems.append(f"sweep.{key}: must be a non-empty list of values, got {values!r}")
        return None
    if len(set(map(repr, values))) != len(values):
        problems.append(f"sweep.{key}: lists a value twice")
    out = []
    for i, value in enumerate(values):
        if base is not None:
            for p in _problems(**{**base, key: value}):
                problems.append(f"sweep.{key}[{i}]: {p.split(': ', 1)[-1]}")
        out.append((value, {key: value}))
    return out


def _tariffs(
    values: Any, base: dict[str, Any] | None, problems: list[str]
) -> list[tuple[Any, dict[str, Any]]] | None:
    if not isinstance(values, list) or not values or not all(isinstance(v, dict) for v in values):
        problems.append("sweep.tariff: must be an array of tables ([[sweep.tariff]])")
        return None
    out = []
    names: set[str] = set()
    for i, table in enumerate(values):
        where = f"sweep.tariff[{i}]"
        name = table.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"{where}.name: required, a non-empty string")
            name = f"tariff-{i}"
        elif name in names:
            problems.append(f"{where}.name: {name!r} is used twice")
        names.add(name)
        change = {}
        for key, value in table.items():
            if key == "name":
                continue
            if key not in _TARIFF_KEYS:
                problems.append(
                    f"{where}.{key}: unknown key (expected name, {', '.join(_TARIFF_KEYS)})"
                )
            else:
                change[key] = value
        if base is not None:
            for p in _problems(**{**base, **change}):
                field_name, _, rule = p.partition(": ")
                problems.append(f"{where}.{field_name}: {rule}")
        out.append((name, change))
    return out
