"""SIGINT and SIGTERM stop ``gridex demo`` and ``gridex-meter run`` cleanly, at any point.

A stopped demo leaves its report folder as it was (an earlier complete report
stays; no half-written one appears), no work folder behind, and none of its
child processes (the embedded EVM's node, the verifier) running.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]


def wait_for(predicate: Callable[[], bool], *, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def running(pid: int) -> bool:
    """``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def partial(tmp_path: Path) -> list[Path]:
    return sorted(tmp_path.glob(".report.partial-*"))


@pytest.mark.parametrize(
    ("sig", "when"),
    [
        (signal.SIGINT, "setup"),
        (signal.SIGTERM, "setup"),
        (signal.SIGINT, "trading"),
        (signal.SIGTERM, "trading"),
    ],
)
def test_a_stopped_demo_leaves_the_report_folder_as_it_was(
    tmp_path: Path, sig: signal.Signals, when: str
) -> None:
    report = tmp_path / "report"
    report.mkdir()
    (report / "index.html").write_text("an earlier, complete report")
    proc = subprocess.Popen(
        [sys.executable, "-m", "market.cli", "demo", "--participants", "4",
         "--modbus-devices", "1", "--intervals", "96", "--report", str(report)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        if when == "setup":
            wait_for(lambda: bool(partial(tmp_path)))  # the work folder exists: setting up
        else:
            wait_for(lambda: any((p / "engine.db").exists() for p in partial(tmp_path)))
            wait_for(lambda: len(children(proc.pid)) >= 2)  # the EVM's node and the verifier
        spawned = children(proc.pid)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "gridex demo: interrupted" in err
    assert "Traceback" not in err
    assert (report / "index.html").read_text() == "an earlier, complete report"
    assert sorted(p.name for p in report.iterdir()) == ["index.html"]
    assert partial(tmp_path) == []
    wait_for(lambda: not any(running(pid) for pid in spawned), timeout_s=30.0)
