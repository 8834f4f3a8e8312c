"""Benchmark ``drip-loader serve``: durable webhooks per second against a bare endpoint.

Run:  .venv/bin/python -m tests.benchmarks.bench_serve [--events 20000] [--clients 64] [--rounds 3]
                                                       [--preload 2000000] [--fast-server]
                                                       [--debugger]

On the tests' PostgreSQL (DRIP_LOADER_TEST_DATABASE_URL, else Debian's binaries, else
embedded; a local one from Debian's binaries runs with Postgres's default durability, fsync
and synchronous commit on, unless ``--fast-server``; the first line says which) it starts,
on 127.0.0.1:
  * ``drip-loader serve --port 0`` against a fresh database, and
  * a bare endpoint of the same stack (Starlette on uvicorn, same settings) that reads the
    body and answers 200 without any database;
then, ``--rounds`` times, posts ``--events`` new realistic webhooks (``loader.sample``, one
event per request, as Drip sends them) from ``--clients`` concurrent keep-alive
connections (aiohttp) to serve, and the same bodies to the bare endpoint.  A 429 is retried
after a pause, as Drip would.  Rounds alternate so that both see the same machine (other
work on a shared machine moves absolute figures a lot; the ratio per round much less).
Finally it stops serve with SIGTERM and checks that every event answered 2xx is in
``_raw_events``, and every such email event in ``tracks``.

With ``--preload N`` a second serve runs on a database that already holds N other events
(loaded with ``drip-loader load``, then vacuumed) and gets the same bodies in each round:
the ratio preloaded/empty says whether serve's cost grows with the warehouse.

With ``--debugger`` one more serve runs with the ``/debugger`` page on (an admin token set)
and nobody watching it, on a fresh database of its own, and gets the same bodies in each
round: the ratio debugger/plain says what recording the live stream costs.  The serves
take turns in each round, in the opposite order every other round.

Prints, per round and overall: durable events/s, p50/p99 latency, the ratio serve/bare,
serve's CPU time per event, and how long the transform took to catch up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import sqlalchemy as sa

from loader.domain.events import parse_record
from loader.domain.sample import generate_events
from loader.warehouse.db import make_engine
from tests.support.postgres import fresh_database, postgres_server

BIN = Path(sys.executable).parent / "drip-loader"
TOKEN = "bench-token-0123456789abcdef"
ADMIN_TOKEN = "bench-admin-0123456789abcdef"
_LISTENING = re.compile(r"http://127\.0\.0\.1:(\d+)/")


def _wait_port(log: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}:\n{log.read_text()}")
        found = _LISTENING.search(log.read_text())
        if found:
            return int(found.group(1))
        time.sleep(0.05)
    raise SystemExit(f"server did not start:\n{log.read_text()}")


async def _post_all(
    url: str, bodies: list[bytes], clients: int
) -> tuple[float, list[float], list[int], int]:
    """Post every body; return (seconds, latencies of 2xx, indexes answered 2xx, 429s)."""
    latencies: list[float] = []
    accepted: list[int] = []
    retries = 0
    todo = iter(range(len(bodies)))
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            nonlocal retries
            for index in todo:
                while True:
                    started = time.perf_counter()
                    async with session.post(url, data=bodies[index], headers=headers) as resp:
                        await resp.read()
                        status = resp.status
                    if status == 429:
                        retries += 1
                        await asyncio.sleep(0.5)
                        continue
                    if status >= 300:
                        raise SystemExit(f"unexpected HTTP {status}")
                    latencies.append(time.perf_counter() - started)
                    accepted.append(index)
                    break

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        seconds = time.perf_counter() - started
    return seconds, latencies, accepted, retries


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _run_load(
    port: int, bodies: list[bytes], clients: int
) -> tuple[float, list[float], list[int], int]:
    url = f"http://127.0.0.1:{port}/webhooks/drip/{TOKEN}"
    return asyncio.run(_post_all(url, bodies, clients))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _bare_app() -> None:
    """``--bare PORTFILE``: the same stack answering 200 without a database."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def webhook(request: Request) -> Response:
        await request.body()
        return Response(b'{"received":1}', media_type="application/json")

    app = Starlette(routes=[Route("/webhooks/drip/{token}", webhook, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    print(
        f"bare endpoint on http://127.0.0.1:{sock.getsockname()[1]}/", file=sys.stderr, flush=True
    )
    config = uvicorn.Config(app, access_log=False, server_header=False, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


def _require_debugger(port: int) -> None:
    """Stop unless ``/debugger`` is on at ``port`` (it asks for the admin token)."""
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/debugger", timeout=10)
    except urllib.error.HTTPError as refused:
        if refused.code == 401:
            return
    raise SystemExit("serve did not turn /debugger on: is DRIP_LOADER_ADMIN_TOKEN read?")


def _mean_group(port: int) -> float:
    """Events per landing transaction so far, from serve's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    events = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("drip_loader_webhook_events_total{")
    )
    commits = next(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("drip_loader_group_commits_total")
    )
    return events / commits if commits else 0.0


def _line(name: str, seconds: float, latencies: list[float], retries: int) -> str:
    rate = len(latencies) / seconds
    return (
        f"{name:<6} {len(latencies):>7,} events {seconds:6.2f} s {rate:>7,.0f}/s  "
        f"p50 {_percentile(latencies, 0.5):5.1f} ms  p99 {_percentile(latencies, 0.99):6.1f} ms"
        + (f"  ({retries} x 429 retried)" if retries else "")
    )


def _start(args: list[str], log: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=out)
    return proc, _wait_port(log, proc)


@dataclass
class _Serve:
    """One ``drip-loader serve`` process, its database and what it answered."""

    name: str
    url: str
    proc: subprocess.Popen[bytes]
    port: int
    accepted: list[int] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    cpu: float = 0.0

    def round(self, bodies: list[bytes], start: int, clients: int) -> tuple[float, str]:
        """Post one round; return its events/s and its printed line."""
        before = _cpu_seconds(self.proc.pid)
        seconds, latencies, ok, retries = _run_load(self.port, bodies, clients)
        self.cpu += _cpu_seconds(self.proc.pid) - before
        self.accepted.extend(start + i for i in ok)
        self.latencies.extend(latencies)
        rate = len(latencies) / seconds
        self.rates.append(rate)
        return rate, _line(self.name, seconds, latencies, retries)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


def _preload(url: str, tmp: str, events: int, seed: int) -> None:
    """``drip-loader load`` ``events`` other sample events into ``url``, then vacuum."""
    path = Path(tmp) / "preload.ndjson"
    env = {**os.environ, "DRIP_LOADER_DATABASE_URL": url}
    subprocess.run(
        [str(BIN), "sample", "--events", str(events), "--seed", str(seed), "--out", str(path)],
        check=True,
        capture_output=True,
    )
    started = time.perf_counter()
    subprocess.run([str(BIN), "load", str(path)], env=env, check=True, capture_output=True)
    print(f"preloaded {events:,} events in {time.perf_counter() - started:.1f} s")
    path.unlink()
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    finally:
        engine.dispose()


def _verify(target: _Serve, everything: list[bytes]) -> bool:
    """Every event ``target`` answered 2xx is in ``_raw_events``, each email one in ``tracks``."""
    keys = [parse_record(everything[i]) for i in set(target.accepted)]
    engine = make_engine(target.url)
    try:
        with engine.connect() as conn:
            raw = set(conn.execute(sa.text("SELECT _event_key FROM drip._raw_events")).scalars())
            tracks = set(conn.execute(sa.text("SELECT id FROM drip.tracks")).scalars())
    finally:
        engine.dispose()
    missing_raw = sum(1 for k in keys if k.key not in raw)
    missing_tracks = sum(1 for k in keys if k.is_email and k.key not in tracks)
    print(
        f"verified {target.name}: {len({k.key for k in keys}):,} distinct events answered 2xx; "
        f"missing from _raw_events: {missing_raw}; email events missing from tracks: "
        f"{missing_tracks}"
    )
    return not (missing_raw or missing_tracks)


def _caught_up(url: str) -> float:
    """Seconds until the background transform has emptied ``_pending``."""
    done_at = time.perf_counter()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            while conn.execute(sa.text("SELECT count(*) FROM drip._pending")).scalar_one():
                conn.rollback()
                time.sleep(0.05)
    finally:
        engine.dispose()
    return time.perf_counter() - done_at


def main() -> None:
    if len(sys.argv) == 2 and sys.argv[1] == "--bare":
        _bare_app()
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20_000, help="webhooks per round")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--serve-args", default="", help="extra options for serve, e.g. '--writers 4'"
    )
    parser.add_argument(
        "--preload",
        type=int,
        default=0,
        help="also run serve on a database holding N other events, in the same rounds",
    )
    parser.add_argument(
        "--fast-server", action="store_true", help="a local server with the tests' fsync=off"
    )
    parser.add_argument(
        "--debugger",
        action="store_true",
        help="also run serve with the /debugger page on (nobody watching), in the same rounds",
    )
    args = parser.parse_args()

    warmup = 1000
    everything = list(generate_events(events=warmup + args.events * args.rounds, seed=args.seed))
    with (
        tempfile.TemporaryDirectory(prefix="drip-bench-") as tmp,
        postgres_server(durable=not args.fast_server) as (admin_url, how, _),
    ):
        print(f"server: {how}; machine: {os.cpu_count()} cores; clients: {args.clients}")
        names = (
            ["serve"] + (["serve+"] if args.preload else []) + (["debug"] if args.debugger else [])
        )
        urls = [fresh_database(admin_url, f"bench_{n.replace('+', '_preloaded')}") for n in names]
        if args.preload:
            _preload(urls[1], tmp, args.preload, args.seed + 1_000)
        targets: list[_Serve] = []
        bare: subprocess.Popen[bytes] | None = None
        ratios: list[float] = []
        growth: list[float] = []
        debugger_costs: list[float] = []
        bare_cpu = 0.0
        codes: list[int] = []
        try:
            for name, url in zip(names, urls, strict=True):
                env = {
                    **os.environ,
                    "DRIP_LOADER_DATABASE_URL": url,
                    "DRIP_LOADER_WEBHOOK_TOKEN": TOKEN,
                }
                if name == "debug":
                    env["DRIP_LOADER_ADMIN_TOKEN"] = ADMIN_TOKEN
                proc, port = _start(
                    [str(BIN), "serve", "--port", "0", *args.serve_args.split()],
                    Path(tmp) / f"{name}.log",
                    env,
                )
                targets.append(_Serve(name, url, proc, port))
                if name == "debug":
                    _require_debugger(port)
            bare, bare_port = _start(
                [sys.executable, "-m", "tests.benchmarks.bench_serve", "--bare"],
                Path(tmp) / "bare.log",
                dict(os.environ),
            )
            for target in targets:
                _run_load(target.port, everything[:warmup], args.clients)
                target.accepted.extend(range(warmup))  # warm-up events were answered 2xx too
            _run_load(bare_port, everything[:warmup], args.clients)
            for round_ in range(args.rounds):
                start = warmup + round_ * args.events
                bodies = everything[start : start + args.events]
                turns = targets if round_ % 2 == 0 else targets[::-1]
                done = {target.name: target.round(bodies, start, args.clients) for target in turns}
                lines = [done[target.name] for target in targets]
                before = _cpu_seconds(bare.pid)
                b_seconds, b_latencies, _, _ = _run_load(bare_port, bodies, args.clients)
                bare_cpu += _cpu_seconds(bare.pid) - before
                bare_rate = len(b_latencies) / b_seconds
                rate = lines[0][0]
                ratios.append(rate / bare_rate)
                print(
                    f"round {round_ + 1}: ratio serve/bare {rate / bare_rate:.2f}"
                    + (f"; preloaded/empty {lines[1][0] / rate:.2f}" if args.preload else "")
                )
                if args.preload:
                    growth.append(lines[1][0] / rate)
                if args.debugger:
                    debugger_costs.append(done["debug"][0] / rate)
                    print(f"  ratio debugger on/off {debugger_costs[-1]:.2f}")
                for _, line in lines:
                    print("  " + line)
                print("  " + _line("bare", b_seconds, b_latencies, 0))
            caught_up = _caught_up(urls[0])
            group = _mean_group(targets[0].port)
        finally:
            codes = [target.stop() for target in targets]
            if bare is not None:
                bare.send_signal(signal.SIGTERM)
                bare.wait(30)
        total = args.events * args.rounds
        median = len(ratios) // 2
        rates = targets[0].rates
        print(
            f"serve durable events/s: best {max(rates):,.0f}, median {sorted(rates)[median]:,.0f}"
            f"; ratio serve/bare: best {max(ratios):.2f}, median {sorted(ratios)[median]:.2f}"
        )
        if args.preload:
            print(
                f"serve with {args.preload:,} events stored: median "
                f"{sorted(targets[1].rates)[median]:,.0f} durable events/s; ratio "
                f"preloaded/empty: median {sorted(growth)[median]:.2f}"
            )
        if args.debugger:
            debug = targets[-1]
            print(
                f"serve with /debugger on, nobody watching: median "
                f"{sorted(debug.rates)[median]:,.0f} durable events/s; ratio debugger on/off: "
                f"median {sorted(debugger_costs)[median]:.2f}; CPU per event "
                f"{debug.cpu * 1e6 / total:.0f} us"
            )
        latencies_all = targets[0].latencies
        print(
            f"serve latency over all rounds: p50 {_percentile(latencies_all, 0.5):.1f} ms, "
            f"p99 {_percentile(latencies_all, 0.99):.1f} ms"
        )
        print(
            f"CPU per event: serve {targets[0].cpu * 1e6 / total:.0f} us, "
            f"bare {bare_cpu * 1e6 / total:.0f} us; transform caught up "
            f"{caught_up:.2f} s after the last answer; serve exited {codes}"
        )
        print(f"group commit: {group:.1f} events per landing transaction on average")
        verified = [_verify(target, everything) for target in targets]
        if not all(verified) or any(codes):
            raise SystemExit(1)


if __name__ == "__main__":
    main()
