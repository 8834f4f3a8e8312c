"""Run one ``drip-loader`` command as the benchmarks time it: wall seconds, CPU seconds and
its own peak RSS.

Linux counts in a child's peak RSS (``ru_maxrss``) the memory of the process it was forked
from, as it was at the exec: a command started straight from a benchmark that has grown
(a preload, a sample held in memory) would "peak" at the benchmark's size.  A small Python
process between them starts the command and reports the command's own peak and CPU time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent / "drip-loader"

_BETWEEN = """
import os, sys
fd = int(sys.argv[1])
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
os.write(fd, f"{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}".encode())
sys.exit(os.waitstatus_to_exitcode(status))
"""


@dataclass(frozen=True)
class Measured:
    seconds: float
    """Wall time, from the start to the exit."""
    peak_rss_kib: int
    """The command's own peak resident set size."""
    cpu_seconds: float
    """User + system time of the command (not of the small process that started it)."""
    stdout: bytes


def run_drip_loader(args: list[str], *, env: dict[str, str]) -> Measured:
    """Run ``drip-loader ARGS``; exit the benchmark with the command's error if it fails."""
    peak_r, peak_w = os.pipe()
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", _BETWEEN, str(peak_w), str(BIN), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            pass_fds=(peak_w,),
        )
        os.close(peak_w)
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.stdout.close()
        with os.fdopen(peak_r, "rb") as peak_pipe:
            usage = peak_pipe.read()
        status = proc.wait()
        seconds = time.perf_counter() - started
        if status != 0:
            stderr.seek(0)
            raise SystemExit(f"drip-loader {args[0]} failed: {stderr.read().decode().strip()}")
    peak, cpu = usage.split()
    return Measured(seconds, int(peak), float(cpu), out)
