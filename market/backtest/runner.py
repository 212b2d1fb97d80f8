"""Running a backtest: one Dask task per (feeder, day), results streamed to the store.

Where the tasks run:

- default: a :class:`distributed.LocalCluster` sized to the machine (one
  single-threaded worker process per core), on 127.0.0.1;
- ``scheduler="tcp://HOST:8786"`` (or ``DASK_SCHEDULER_ADDRESS``): a running
  Dask cluster, e.g. one started on SLURM with dask-jobqueue (see the
  README's "Studies"); the results folder must be at the same path on every
  worker (a shared file system);
- ``serial=True``: this process, task after task, no Dask at all (the
  reference the Dask runs are checked against, byte for byte).

Each task writes its own file (:class:`market.backtest.store.ResultStore`)
and returns a small :class:`TaskOutcome`, so nothing large travels back to
the client. A worker keeps each feeder it loaded, its homes and its
base-load forecast (with the yearly profile normalisation and the
topology-only values :mod:`market.clearing` caches on the feeder) for every
later day of that feeder; the tasks of one feeder are pinned loosely
(``allow_other_workers``) to one worker so that cache is hit. Each
interval's linearisation is that interval's own (its base differs). A
feeder that fails to load, or a task that dies, is reported with its
feeder, day and reason; the other tasks go on.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grid import Feeder, load_feeder
from market.backtest.day import simulate_day
from market.backtest.grid import base_forecast
from market.backtest.homes import plan_participants
from market.backtest.spec import BacktestSpec, FeederRef
from market.backtest.store import ResultStore

if TYPE_CHECKING:
    from market.demo.fleet import Home
    from market.forecast import ProfileForecast

__all__ = [
    "BacktestOutcome",
    "TaskOutcome",
    "operator_account",
    "run_backtest",
    "run_backtests",
    "run_task",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """What one (feeder, day) task did.

    Attributes:
        feeder: the feeder's name.
        day: the day.
        status: ``done`` (file written), ``skipped`` (it already existed) or ``failed``.
        reason: why it failed (empty otherwise).
        intervals: intervals simulated.
        failed_intervals: (interval, reason) of each interval that did not clear.
        clear_s: time spent clearing (AC check included), s.
        wall_s: the task's wall time, s.
    """

    feeder: str
    day: dt.date
    status: str
    reason: str = ""
    intervals: int = 0
    failed_intervals: tuple[tuple[int, str], ...] = ()
    clear_s: float = 0.0
    wall_s: float = 0.0


@dataclass(frozen=True)
class BacktestOutcome:
    """The run as a whole.

    Attributes:
        folder: the results folder.
        total: (feeder, day) tasks of the backtest.
        already_done: tasks skipped because an earlier run finished them.
        tasks: what every task run now did.
        wall_s: wall time of the run, s.
        dashboard: the Dask dashboard's address, when one was running.
    """

    folder: Path
    total: int
    already_done: int
    tasks: tuple[TaskOutcome, ...]
    wall_s: float
    dashboard: str = ""
    failed: tuple[TaskOutcome, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "failed", tuple(t for t in self.tasks if t.status == "failed"))

    @property
    def intervals(self) -> int:
        """Intervals simulated by this run."""
        return sum(t.intervals for t in self.tasks)

    @property
    def failed_intervals(self) -> list[tuple[str, dt.date, int, str]]:
        """(feeder, day, interval, reason) of every interval that did not clear."""
        return [(t.feeder, t.day, k, r) for t in self.tasks for k, r in t.failed_intervals]

    @property
    def intervals_per_s(self) -> float:
        """Throughput of this run."""
        return self.intervals / self.wall_s if self.wall_s > 0 else 0.0


def operator_account(seed: int) -> str:
    """The operator's account of a backtest (takes the grid's side), from the seed."""
    return "0x" + hashlib.sha256(f"gridex backtest operator {seed}".encode()).hexdigest()[:40]


@functools.lru_cache(maxsize=16)
def _feeder(source: str, name: str) -> Feeder:
    """A worker's cache of loaded feeders (and so of their cached sensitivities)."""
    feeder = load_feeder(source)
    if feeder.name != name:
        feeder = Feeder.from_net(feeder.net, name=name)
    return feeder


@functools.lru_cache(maxsize=16)
def _homes(ref: FeederRef, spec: BacktestSpec) -> tuple[Home, ...]:
    return tuple(plan_participants(_feeder(ref.source, ref.name), spec))


@functools.lru_cache(maxsize=16)
def _forecast(ref: FeederRef, spec: BacktestSpec) -> ProfileForecast:
    return base_forecast(_feeder(ref.source, ref.name), _homes(ref, spec), spec)


def run_task(spec: BacktestSpec, ref: FeederRef, day: dt.date, folder: str) -> TaskOutcome:
    """Simulate one (feeder, day) and write its file; never raises (a failure is an outcome)."""
    started = time.perf_counter()
    store = ResultStore(Path(folder))
    if store.is_done(ref.name, day):
        return TaskOutcome(ref.name, day, "skipped")
    try:
        feeder = _feeder(ref.source, ref.name)
    except Exception as exc:  # a feeder file can fail in many ways; report, go on
        return TaskOutcome(ref.name, day, "failed", f"feeder did not load: {exc}")
    try:
        result = simulate_day(
            feeder,
            _homes(ref, spec),
            day,
            spec,
            operator=operator_account(spec.seed),
            forecast=_forecast(ref, spec),
        )
        store.write(result.table, ref.name, day)
    except Exception as exc:  # one bad day must not stop the study
        logger.exception("%s %s failed", ref.name, day)
        return TaskOutcome(ref.name, day, "failed", f"{type(exc).__name__}: {exc}")
    return TaskOutcome(
        ref.name,
        day,
        "done",
        intervals=result.table.height,
        failed_intervals=result.failed,
        clear_s=result.clear_s,
        wall_s=time.perf_counter() - started,
    )


Progress = Callable[[TaskOutcome], None]


def run_backtest(
    spec: BacktestSpec,
    folder: Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    processes: bool = True,
    serial: bool = False,
    on_start: Callable[[int, str], None] | None = None,
    on_task: Progress | None = None,
) -> BacktestOutcome:
    """Run every (feeder, day) of ``spec`` that ``folder`` does not hold yet.

    Args:
        spec: the backtest.
        folder: the results folder (created; a rerun resumes it).
        scheduler: address of a running Dask scheduler; default
            ``DASK_SCHEDULER_ADDRESS``, else a local cluster.
        workers: workers of the local cluster (default: one per core).
        processes: local workers as processes (False: threads of this process).
        serial: run in this process without Dask.
        on_start: called with the number of tasks to run and the dashboard link.
        on_task: called with each task's outcome as it finishes.

    Raises:
        ConfigError: the folder holds another backtest or cannot be created.
    """
    (outcome,) = run_backtests(
        [(spec, Path(folder))],
        scheduler=scheduler,
        workers=workers,
        processes=processes,
        serial=serial,
        on_start=on_start,
        on_task=on_task,
    )
    return outcome


def run_backtests(
    jobs: Sequence[tuple[BacktestSpec, Path]],
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    processes: bool = True,
    serial: bool = False,
    on_start: Callable[[int, str], None] | None = None,
    on_task: Progress | None = None,
) -> list[BacktestOutcome]:
    """Run several backtests (a study's points) as one stream of tasks on one cluster.

    Arguments as :func:`run_backtest`; one outcome per job, in order.

    Raises:
        ConfigError: a folder holds another backtest or cannot be created.
    """
    started = time.perf_counter()
    todo: list[tuple[int, FeederRef, dt.date]] = []
    totals = []
    for j, (spec, folder) in enumerate(jobs):
        store = ResultStore(folder)
        store.open(spec)
        tasks = [(ref, day) for ref in spec.feeders for day in spec.day_list]
        totals.append(len(tasks))
        todo += [(j, ref, day) for ref, day in tasks if not store.is_done(ref.name, day)]
    outcomes: list[list[TaskOutcome]] = [[] for _ in jobs]
    dashboard = ""

    def record(j: int, outcome: TaskOutcome) -> None:
        outcomes[j].append(outcome)
        if on_task is not None:
            on_task(outcome)

    if serial or not todo:
        if on_start is not None:
            on_start(len(todo), "")
        for j, ref, day in todo:
            spec, folder = jobs[j]
            record(j, run_task(spec, ref, day, str(folder)))
    else:
        address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
        with _client(address, workers=workers, processes=processes) as client:
            dashboard = _dashboard(client, local=address is None)
            if on_start is not None:
                on_start(len(todo), dashboard)
            for j, outcome in _dask_run(client, jobs, todo):
                record(j, outcome)
    wall_s = time.perf_counter() - started
    return [
        BacktestOutcome(
            folder=Path(folder),
            total=totals[j],
            already_done=totals[j] - sum(1 for t in todo if t[0] == j),
            tasks=tuple(outcomes[j]),
            wall_s=wall_s,
            dashboard=dashboard,
        )
        for j, (_, folder) in enumerate(jobs)
    ]


@contextmanager
def _client(address: str | None, *, workers: int | None, processes: bool) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    if address:
        with Client(address) as client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    if not logger.isEnabledFor(logging.DEBUG):
        # distributed logs every worker's coming and going at INFO; keep the progress readable
        logging.getLogger("distributed").setLevel(logging.ERROR)
    # worker processes talk TCP on 127.0.0.1 only; thread workers talk in-process
    network = {"host": "127.0.0.1"} if processes else {}
    with (
        LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=processes,
            dashboard_address="127.0.0.1:0",  # the scheduler's HTTP server, local only
            silence_logs=logging.ERROR,
            **network,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _dashboard(client: Any, *, local: bool) -> str:
    """The dashboard's link when it runs (a local one needs bokeh installed here)."""
    import importlib.util

    if local and importlib.util.find_spec("bokeh") is None:
        return ""
    try:
        services = client.scheduler_info().get("services", {})
    except Exception:  # an old or unusual scheduler: no link, no harm
        return ""
    return str(client.dashboard_link) if "dashboard" in services else ""


def _dask_run(
    client: Any,
    jobs: Sequence[tuple[BacktestSpec, Path]],
    todo: list[tuple[int, FeederRef, dt.date]],
) -> Iterator[tuple[int, TaskOutcome]]:
    from distributed import as_completed

    names = sorted(client.scheduler_info().get("workers", {}))
    feeders = list(dict.fromkeys(ref.name for _, ref, _ in todo))
    home = {name: names[i % len(names)] for i, name in enumerate(feeders)} if names else {}
    futures = {}
    for j, ref, day in todo:
        spec, folder = jobs[j]
        extra: dict[str, Any] = {}
        if ref.name in home:
            extra = {"workers": [home[ref.name]], "allow_other_workers": True}
        future = client.submit(
            run_task,
            spec,
            ref,
            day,
            str(folder),
            key=f"backtest-{ref.name}-{day.isoformat()}-{_spec_key(spec)}",
            pure=False,
            **extra,
        )
        futures[future] = (j, ref, day)
    for future in as_completed(list(futures)):
        j, ref, day = futures.pop(future)
        try:
            yield j, future.result()
        except Exception as exc:  # the task's worker died or the task was lost
            yield j, TaskOutcome(ref.name, day, "failed", f"{type(exc).__name__}: {exc}")
        future.release()


def _spec_key(spec: BacktestSpec) -> str:
    import json

    return hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
