"""``gridex-meter status`` and the one-process-per-buffer lock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from meter_adapter.cli import main
from meter_adapter.errors import MeterConfigError
from meter_adapter.uplink import ReadingBuffer
from meter_adapter.uplink.lock import BufferLock, holder_pid

ROOT = Path(__file__).parents[2]


def test_status_reads_the_buffer_without_changing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "b.sqlite"
    buffer = ReadingBuffer(path, meter_id="m1", first_seq=10)
    for i in range(3):
        buffer.append(1_750_000_000_000 + i * 60_000, i, 0, 0)
    buffer.acknowledge(10)
    buffer.close()
    before = path.read_bytes()
    assert main(["status", "--buffer", str(path)]) == 0
    out = capsys.readouterr().out
    assert "meter m1: buffer" in out
    assert "(not running)" in out
    assert "latest reading seq 12 at 2025-06-15" in out
    assert "acknowledged up to seq 10; 2 readings waiting, 0 quarantined" in out
    assert path.read_bytes() == before
    assert main(["status", "--buffer", str(tmp_path / "none.sqlite")]) == 1
    assert "no buffer at" in capsys.readouterr().err
    assert main(["status"]) == 2


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    assert holder_pid(path) is None
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from meter_adapter.uplink.lock import BufferLock\n"
            f"lock = BufferLock({str(path)!r}); lock.acquire(); print('held', flush=True)\n"
            "sys.stdin.read()",
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert holder_pid(path) == holder.pid
        with pytest.raises(MeterConfigError, match=rf"is in use by process {holder.pid}"):
            BufferLock(path).acquire()
    finally:
        holder.kill()  # the operating system drops the lock however the holder ends
        holder.wait(timeout=30)
    with BufferLock(path):
        assert holder_pid(path) == os.getpid()  # flock is per open file, even in one process
    assert holder_pid(path) is None
