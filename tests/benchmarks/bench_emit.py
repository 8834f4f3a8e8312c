"""Benchmark ``drip-loader emit``: forward N landed events to a local ``/v1/batch`` sink.

Run:  .venv/bin/python -m tests.benchmarks.bench_emit [--events 200000]

It lands ``--events`` sample webhook bodies (``drip-loader load``, not timed), starts the
sink of the tests in its own process (it checks the write key and Segment's limits, like
Segment), then times ``drip-loader emit`` (a process, like a cron job) and prints events/s,
requests, the mean request size, the peak RSS of the emit process, and a second ``emit``
with nothing left to send.  The server is the one the tests use
(DRIP_LOADER_TEST_DATABASE_URL, else Debian's binaries, else embedded).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from tests.benchmarks.child import BIN, run_drip_loader
from tests.support.postgres import fresh_database, postgres_server

WRITE_KEY = "bench-write-key"


def _run(args: list[str], env: dict[str, str]) -> tuple[float, int, dict[str, object]]:
    """Seconds, peak RSS (KiB) and the JSON report of one drip-loader process."""
    run = run_drip_loader([*args, "--format", "json"], env=env)
    return run.seconds, run.peak_rss_kib, json.loads(run.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="drip-bench-") as tmp,
        postgres_server() as (admin_url, how, _),
    ):
        env = {**os.environ, "DRIP_LOADER_DATABASE_URL": fresh_database(admin_url, "bench_emit")}
        path = Path(tmp) / "events.ndjson"
        subprocess.run(
            [
                str(BIN),
                "sample",
                "--events",
                str(args.events),
                "--seed",
                str(args.seed),
                "--out",
                str(path),
            ],
            check=True,
            capture_output=True,
        )
        _, _, loaded = _run(["load", str(path)], env)
        sink = subprocess.Popen(
            [sys.executable, "-m", "tests.support.segment_sink", "--write-key", WRITE_KEY],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            url = sink.stdout.readline().strip() if sink.stdout else ""
            env |= {"SEGMENT_WRITE_KEY": WRITE_KEY, "DRIP_LOADER_SEGMENT_HOST": url}
            seconds, rss, report = _run(["emit"], env)
            again_s, _, again = _run(["emit"], env)
            with urllib.request.urlopen(f"{url}/stats", timeout=10) as answer:
                stats = json.loads(answer.read())
        finally:
            sink.terminate()
            sink.wait(timeout=10)
        sent, requests = int(report["sent"]), int(report["requests"])  # type: ignore[call-overload]
        print(f"server: {how}; machine: {os.cpu_count()} cores; sink: separate process on {url}")
        landed = loaded["rows_added"]["tracks"]  # type: ignore[index]
        print(f"sample: {args.events:,} webhook bodies -> {landed:,} email events landed")
        print(
            f"emit   (claim, build, POST /v1/batch, mark): {seconds:6.2f} s  "
            f"{sent / seconds:>9,.0f} events/s  {requests} requests "
            f"(~{sent / max(1, requests):,.0f} events each)  peak RSS {rss / 1024:.0f} MB"
        )
        print(f"sink accepted {stats['accepted']:,} events in {stats['requests']} requests")
        print(
            f"rerun  (nothing pending):                    {again_s:6.2f} s  sent {again['sent']}"
        )


if __name__ == "__main__":
    main()
