"""Benchmark ``drip-loader drip sync`` against the tests' local fake Drip API.

Run:  .venv/bin/python -m tests.benchmarks.bench_drip_sync [--subscribers 100000]

The fake (tests/support/fake_drip.py, in this process) serves ``--subscribers`` subscribers
(1,000 a page) plus the default campaigns, broadcasts, workflows, tags and custom fields.
It times two ``drip-loader drip sync`` processes (a cron job): the first fills the tables,
the second, after 1% of the subscribers disappeared, applies the diff.  It prints seconds,
records/s and the peak RSS of each process (staging is per page, so RSS should not grow
with the account).  The server is the one the tests use (DRIP_LOADER_TEST_DATABASE_URL,
else Debian's binaries, else embedded).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess

from tests.benchmarks.child import BIN, run_drip_loader
from tests.support.fake_drip import TOKEN, FakeDrip, default_data
from tests.support.postgres import fresh_database, postgres_server


def _run(env: dict[str, str]) -> tuple[float, int, dict[str, object]]:
    """Seconds, peak RSS (KiB) and the JSON report of one ``drip sync`` process."""
    run = run_drip_loader(["drip", "sync", "--format", "json"], env=env)
    return run.seconds, run.peak_rss_kib, json.loads(run.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=100_000)
    args = parser.parse_args()

    with (
        postgres_server() as (admin_url, how, _),
        FakeDrip(data=default_data(subscribers=args.subscribers)) as drip,
    ):
        env = {
            **os.environ,
            "DRIP_LOADER_DATABASE_URL": fresh_database(admin_url, "bench_drip_sync"),
            "DRIP_LOADER_DRIP_API_TOKEN": TOKEN,
            "DRIP_LOADER_DRIP_API_URL": drip.url,
        }
        subprocess.run([str(BIN), "migrate"], env=env, check=True, capture_output=True)
        print(f"server: {how}; {args.subscribers:,} subscribers, 1,000 a page")
        for label in ("first sync (all new)", "second sync (1% gone)"):
            seconds, rss, report = _run(env)
            tables: dict[str, dict[str, int]] = report["tables"]  # type: ignore[assignment]
            seen = sum(t["seen"] for t in tables.values())
            deleted = sum(t["deleted"] for t in tables.values())
            print(
                f"{label:<24}{seconds:7.2f} s  {seen / seconds:9,.0f} records/s  "
                f"{report['requests']:>5} requests  deleted {deleted:>6,}  peak RSS "
                f"{rss / 1024:6.1f} MiB"
            )
            del drip.data["subscribers"][::100]


if __name__ == "__main__":
    main()
