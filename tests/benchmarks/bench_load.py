"""Benchmark ``drip-loader load`` against the floor of its design: a plain COPY of the same lines.

Run:  .venv/bin/python -m tests.benchmarks.bench_load [--events 200000] [--rss-events 100000 1000000]
                                                      [--preload 2000000 [--new-events 100000]
                                                      [--backfill-events 100000]] [--fast-server]

It generates the events with ``drip-loader sample``, then in one run on one server:
  0. ``drip-loader load FILE`` into an empty database: the first load on a new server, which
     also creates the schema and the server's first WAL files (printed, but not compared);
  1. ``drip-loader load FILE`` into a fresh database whose schema is at head, as a warehouse's
     scheduled job finds it (file → raw + collections + tracks, committed);
  2. the same command again (a rerun: everything is a duplicate);
  3. a server-side COPY of the same lines into a one-column jsonb table (the floor);
and prints events/s for each, the ratio load/floor and the peak RSS of the ``load`` process,
then the peak RSS of ``load`` for each size in ``--rss-events``.

With ``--preload N`` it then builds a warehouse of a year: N other events (other seeds: no
key in common) spread over the 365 days before the latest month's last days, loaded in time
order as webhooks arrive, then vacuumed as autovacuum would have by then.  It prints the
storage per event all-in (every table, partition, index and TOAST), then times, into that
warehouse and into an empty one (schema at head):
  * ``--new-events`` events of the latest month, after the preloaded ones (what every day
    brings): speed preloaded/empty (target >= 0.9) and WAL per event preloaded/empty
    (target <= 1.2) say whether a load's cost grows with the warehouse;
  * ``--backfill-events`` events spread over an old month that the warehouse already holds
    (a late file of history): speed preloaded/empty (target >= 0.8).
Every timed load starts right after a CHECKPOINT (the first change to a page after one
writes the whole page to WAL, so where a checkpoint falls would otherwise decide the
figure), and it prints the WAL each wrote (pg_stat_wal: bytes, full-page images).

It also prints the wall time of process start: ``python -c pass``, ``drip-loader --help``
and an empty ``drip-loader load`` (schema at head, nothing pending), best of three.

The server is the tests' (DRIP_LOADER_TEST_DATABASE_URL, else Debian's binaries, else
embedded), but a local one from Debian's binaries is started with Postgres's default
durability (fsync and synchronous commit on), as a user's warehouse runs, not with the
tests' fsync=off (``--fast-server`` for that); the first line says which it used.

When the server runs on this machine it also prints where the CPU goes: seconds of CPU per
event in the ``load`` process and in Postgres (every process of the server), for the load
and for the floor.  Their sum over the machine's cores is a bound no scheduling can beat:
it tells a speed target that needs less work from one that needs more cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from loader.domain.registry import COLLECTIONS
from loader.domain.sample import MEAN_GAP, write_sample
from loader.warehouse.db import make_engine
from tests.benchmarks.child import BIN, run_drip_loader
from tests.support.postgres import fresh_database, postgres_server


def _sample(path: Path, events: int, seed: int) -> None:
    subprocess.run(
        [str(BIN), "sample", "--events", str(events), "--seed", str(seed), "--out", str(path)],
        check=True,
        capture_output=True,
    )


class _ServerCpu:
    """CPU seconds used by every process of a Postgres server running on this machine."""

    def __init__(self, url: str) -> None:
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                backend = int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
            self.postmaster = int(_stat(backend)[1])  # a backend's parent is the postmaster
        except (OSError, sa.exc.SQLAlchemyError):
            self.postmaster = 0  # a server elsewhere: no breakdown
        finally:
            engine.dispose()

    def seconds(self) -> float | None:
        if not self.postmaster:
            return None
        ticks = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = _stat(int(entry.name))
            except OSError:
                continue  # gone meanwhile
            if int(entry.name) == self.postmaster or int(fields[1]) == self.postmaster:
                # utime + stime of the process, and of its children it has waited for
                ticks += sum(int(f) for f in fields[11:15])
        return ticks / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: [state, ppid, ...]."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _timed_load(url: str, path: Path) -> tuple[float, int, float]:
    """Seconds, peak RSS (KiB) and CPU seconds of one ``drip-loader load`` process."""
    env = {**os.environ, "DRIP_LOADER_DATABASE_URL": url}
    run = run_drip_loader(["load", str(path), "--format", "json"], env=env)
    return run.seconds, run.peak_rss_kib, run.cpu_seconds


def _copy_floor(url: str, path: Path) -> float:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS copy_floor"))
        conn.execute(sa.text("CREATE TABLE copy_floor (doc jsonb)"))
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        started = time.perf_counter()
        with open(path, "rb") as handle:
            # CSV with quote/delimiter bytes that never occur in JSON: each line is one value, as is.
            cursor.copy_expert(
                "COPY copy_floor (doc) FROM STDIN WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')",
                handle,
                size=1 << 18,
            )
        raw.commit()
        seconds = time.perf_counter() - started
    finally:
        raw.close()
        engine.dispose()
    return seconds


def _best_wall(command: list[str], env: dict[str, str] | None = None) -> float:
    """Best of three wall times of a command (start-up figures: the least disturbed run)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        best = min(best, time.perf_counter() - started)
    return best


def _start_times(url: str) -> float:
    """Print start-up wall times; return the CPU seconds of an empty load."""
    env = {**os.environ, "DRIP_LOADER_DATABASE_URL": url}
    bare = _best_wall([sys.executable, "-c", "pass"])
    helped = _best_wall([str(BIN), "--help"])
    empty = _best_wall([str(BIN), "load", "--format", "json"], env)
    print(
        f"start (best of 3): python -c pass {bare:.3f} s   drip-loader --help {helped:.3f} s   "
        f"empty load {empty:.3f} s"
    )
    with tempfile.NamedTemporaryFile(suffix=".ndjson") as nothing:
        return min(_timed_load(url, Path(nothing.name))[2] for _ in range(3))


def _wal(url: str) -> tuple[int, int, int]:
    """The server's WAL so far: bytes, full-page images, checkpoints (pg_stat_wal, PG 14+)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT wal_bytes, wal_fpi, (SELECT checkpoints_timed + checkpoints_req "
                    "FROM pg_stat_bgwriter) FROM pg_stat_wal"
                )
            ).one()
    finally:
        engine.dispose()
    return int(row[0]), int(row[1]), int(row[2])


def _wal_line(name: str, before: tuple[int, int, int], after: tuple[int, int, int], n: int) -> str:
    wal, fpi, checkpoints = (a - b for a, b in zip(after, before, strict=True))
    return (
        f"  {name:9} WAL {wal / n:7,.0f} bytes/event, {fpi / n:5.2f} full-page images/event, "
        f"{checkpoints} checkpoint(s)"
    )


def _vacuum(url: str, *, analyze: bool = True) -> None:
    """VACUUM ANALYZE (or not), then a CHECKPOINT: each timed load starts just after one,
    as its first change to a page after a checkpoint writes the whole page to WAL."""
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if analyze:
                conn.execute(sa.text("VACUUM ANALYZE"))
            conn.execute(sa.text("CHECKPOINT"))
    finally:
        engine.dispose()


def n_events(path: Path) -> int:
    """Lines (events) in an NDJSON sample."""
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


LATEST = datetime(2026, 9, 20, tzinfo=UTC)
"""Where the preloaded year ends and the new events begin: the last days of September 2026."""
OLD_MONTH = datetime(2026, 1, 1, tzinfo=UTC)
"""The month the backfill covers, eight months before the latest one."""


def _spread_sample(path: Path, events: int, seed: int, *, start: datetime, span: timedelta) -> None:
    """A sample of ``events`` in time order from ``start``, over about ``span``."""
    with open(path, "wb") as out:
        write_sample(out, events=events, seed=seed, start=start, spread=span / (events * MEAN_GAP))


def storage_per_event(url: str) -> str:
    """Bytes per landed event of every table of the schema (heap, indexes and TOAST of each
    partition), by table, all-in."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            sizes = conn.execute(
                sa.text(
                    "SELECT coalesce(p.relname, c.relname), sum(pg_total_relation_size(c.oid)) "
                    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "LEFT JOIN pg_inherits i ON i.inhrelid = c.oid "
                    "LEFT JOIN pg_class p ON p.oid = i.inhparent "
                    "WHERE n.nspname = 'drip' AND c.relkind IN ('r', 'm') GROUP BY 1"
                )
            ).all()
            events = int(
                conn.execute(sa.text("SELECT count(*) FROM drip._raw_events")).scalar_one()
            )
    finally:
        engine.dispose()
    by_table = {str(name): int(size) for name, size in sizes}
    collections = {c.name for c in COLLECTIONS}
    parts = {
        "raw": by_table.pop("_raw_events", 0),
        "tracks": by_table.pop("tracks", 0),
        "collections": sum(by_table.pop(name) for name in list(by_table) if name in collections),
        "other": sum(by_table.values()),
    }
    per = {name: size / max(events, 1) for name, size in parts.items()}
    queues = ", ".join(
        f"{name} {by_table.get(name, 0) / 1024:,.0f} kB"
        for name in ("_pending", "_subscriber_changes", "_outbox")
    )
    return (
        f"storage per event, all-in (tables + indexes + TOAST), {events:,} events: "
        f"{sum(per.values()):,.0f} bytes = "
        + ", ".join(f"{name} {size:,.0f}" for name, size in per.items())
        + f" (queues: {queues})"
    )


def _timed_into(url: str, path: Path, name: str) -> tuple[float, int]:
    """Load ``path`` into ``url`` right after a checkpoint; print its time and WAL; return
    the seconds and the WAL bytes."""
    _vacuum(url, analyze=False)
    before = _wal(url)
    seconds, _, _ = _timed_load(url, path)
    after = _wal(url)
    n = n_events(path)
    print(f"  {name:9} {seconds:6.2f} s  {n / seconds:>9,.0f} events/s")
    print(_wal_line(name, before, after, n))
    return seconds, after[0] - before[0]


def _preloaded(admin_url: str, tmp: str, args: argparse.Namespace) -> None:
    """A year of events, then new events of the latest month and a backfill of an old
    month: into that warehouse and into an empty one."""
    events, seed = args.preload, args.seed
    paths = {"new": Path(tmp) / "new.ndjson", "backfill": Path(tmp) / "backfill.ndjson"}
    _spread_sample(
        paths["new"], args.new_events, seed + 2_000, start=LATEST, span=args.new_events * MEAN_GAP
    )
    _spread_sample(
        paths["backfill"],
        args.backfill_events,
        seed + 3_000,
        start=OLD_MONTH,
        span=timedelta(days=31),
    )
    empty: dict[str, str] = {}
    for name in paths:
        empty[name] = fresh_database(admin_url, f"bench_empty_{name}")
        subprocess.run(
            [str(BIN), "migrate"],
            env={**os.environ, "DRIP_LOADER_DATABASE_URL": empty[name]},
            check=True,
            capture_output=True,
        )

    preload_path = Path(tmp) / "preload.ndjson"
    year = timedelta(days=365)
    _spread_sample(preload_path, events, seed + 1_000, start=LATEST - year, span=year)
    url = fresh_database(admin_url, "bench_preload")
    preload_s, _, _ = _timed_load(url, preload_path)
    preload_path.unlink()
    _vacuum(url)
    print(
        f"preload {events:,} events over a year ({(LATEST - year):%Y-%m-%d} .. {LATEST:%Y-%m-%d}), "
        f"in time order: {preload_s:6.2f} s  {events / preload_s:>9,.0f} events/s"
    )
    print(storage_per_event(url))
    for name, title in (
        ("new", f"{args.new_events:,} new events of the latest month (from {LATEST:%Y-%m-%d})"),
        ("backfill", f"a backfill of {args.backfill_events:,} events over {OLD_MONTH:%Y-%m}"),
    ):
        print(f"{title}:")
        empty_s, empty_wal = _timed_into(empty[name], paths[name], "empty")
        full_s, full_wal = _timed_into(url, paths[name], "preloaded")
        target = "target >= 0.9" if name == "new" else "target >= 0.8"
        line = f"  speed preloaded/empty: {empty_s / full_s:.2f} ({target})"
        if name == "new":
            line += f"; WAL per event preloaded/empty: {full_wal / empty_wal:.2f} (target <= 1.2)"
        print(line)
    print(storage_per_event(url).replace("storage per event", "after them, storage per event"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rss-events", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument(
        "--preload",
        type=int,
        default=0,
        help="also time loads into a warehouse of N events spread over a year",
    )
    parser.add_argument(
        "--new-events", type=int, default=100_000, help="new events of the latest month"
    )
    parser.add_argument(
        "--backfill-events", type=int, default=100_000, help="events of an old month's backfill"
    )
    parser.add_argument(
        "--fast-server", action="store_true", help="a local server with the tests' fsync=off"
    )
    parser.add_argument(
        "--server-settings",
        default="",
        help="more options for a local server, e.g. '-c wal_compression=lz4'",
    )
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="drip-bench-") as tmp,
        postgres_server(durable=not args.fast_server, settings=args.server_settings) as (
            admin_url,
            how,
            _,
        ),
    ):
        print(f"server: {how}; machine: {os.cpu_count()} cores")
        path = Path(tmp) / "events.ndjson"
        _sample(path, args.events, args.seed)
        size_mb = path.stat().st_size / 1e6
        first_s, _, _ = _timed_load(fresh_database(admin_url, "bench_first"), path)
        url = fresh_database(admin_url, "bench_load")
        env = {**os.environ, "DRIP_LOADER_DATABASE_URL": url}
        subprocess.run([str(BIN), "migrate"], env=env, check=True, capture_output=True)
        _vacuum(url, analyze=False)
        server = _ServerCpu(url)
        pg = [server.seconds()]
        wal = _wal(url)
        load_s, load_rss, load_cpu = _timed_load(url, path)
        pg.append(server.seconds())
        load_wal = _wal_line("load", wal, _wal(url), args.events)
        rerun_s, _, rerun_cpu = _timed_load(url, path)
        pg.append(server.seconds())
        floor_s = _copy_floor(fresh_database(admin_url, "bench_floor"), path)
        pg.append(server.seconds())
        n = args.events
        print(f"events: {n:,} ({size_mb:.1f} MB NDJSON)")
        print(
            f"first load on this new server, creating the schema: {first_s:6.2f} s  "
            f"{n / first_s:>9,.0f} events/s"
        )
        print(
            f"load   (file -> raw + collections + tracks): {load_s:6.2f} s  {n / load_s:>9,.0f} events/s  peak RSS {load_rss / 1024:.0f} MB"
        )
        print(
            f"rerun  (same file, all duplicates):          {rerun_s:6.2f} s  {n / rerun_s:>9,.0f} events/s"
        )
        print(
            f"floor  (plain COPY into one jsonb column):   {floor_s:6.2f} s  {n / floor_s:>9,.0f} events/s"
        )
        print(f"ratio load/floor: {floor_s / load_s:.2f}   rerun/floor: {floor_s / rerun_s:.2f}")
        print("WAL of the load (the whole server):")
        print(load_wal)
        if None not in pg:
            marks = [float(m or 0.0) for m in pg]
            load_pg, rerun_pg, floor_pg = (marks[i + 1] - marks[i] for i in range(3))
            cores = os.cpu_count() or 1
            print(f"CPU per event, load process + Postgres, and the most {cores} cores allow:")
            for name, python, postgres in (
                ("load", load_cpu, load_pg),
                ("rerun", rerun_cpu, rerun_pg),
            ):
                total = python + postgres
                print(
                    f"  {name:5}  {python / n * 1e6:5.1f} + {postgres / n * 1e6:5.1f} = "
                    f"{total / n * 1e6:5.1f} us   at most {n * cores / total:>9,.0f} events/s"
                )
            print(f"  floor  Postgres {floor_pg / n * 1e6:5.1f} us (one connection: one core)")
        start_cpu = _start_times(url)
        if None not in pg:
            print(
                f"load process CPU / floor Postgres CPU, per event: {load_cpu / floor_pg:.2f}"
                f"  (without the empty load's {start_cpu:.2f} CPU-s of start: "
                f"{(load_cpu - start_cpu) / floor_pg:.2f})"
            )
        print(storage_per_event(url))
        if args.preload:
            _preloaded(admin_url, tmp, args)
        for events in args.rss_events:
            rss_path = Path(tmp) / f"rss-{events}.ndjson"
            _sample(rss_path, events, args.seed)
            seconds, rss, _ = _timed_load(fresh_database(admin_url, "bench_rss"), rss_path)
            print(
                f"peak RSS of load at {events:>9,} events: {rss / 1024:6.0f} MB  ({events / seconds:,.0f} events/s)"
            )
            rss_path.unlink()


if __name__ == "__main__":
    main()
