"""The long fault soak, opt-in (not part of the test suite):

    .venv/bin/python -m tests.faults.soak [--events 1000000] [--kills 10] [--seed 1]

Loads a large sample, SIGKILLs `drip-loader load` at random points `--kills` times (and
restarts PostgreSQL once in the middle), reruns to completion, then checks the accounting
identity and that every table equals a clean single run.  Prints what it did; exits 1 on
any difference.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import tempfile
import time
from pathlib import Path

from loader.domain.sample import write_sample
from loader.warehouse import migrate
from loader.warehouse.db import make_engine
from tests.support.postgres import LocalServer, fresh_database, postgres_server
from tests.support.warehouse import snapshot, start_load


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with (
        tempfile.TemporaryDirectory(prefix="drip-soak-") as tmp,
        postgres_server() as (admin_url, how, server),
    ):
        path = Path(tmp) / "events.ndjson"
        with open(path, "wb") as out:
            write_sample(out, events=args.events, seed=args.seed)
        urls = {}
        for name in ("soak_faults", "soak_clean"):
            urls[name] = fresh_database(admin_url, name)
            engine = make_engine(urls[name], null_pool=True)
            migrate.upgrade(engine, schema="drip")
            engine.dispose()
        print(f"server: {how}; {args.events:,} events; {args.kills} kills")
        for kill in range(args.kills):
            proc = start_load(urls["soak_faults"], path)
            time.sleep(rng.uniform(0.5, 20))
            if kill == args.kills // 2 and isinstance(server, LocalServer):
                server.pg_ctl("stop")
                proc.communicate(timeout=300)
                print(f"  run {kill}: database stopped under it, exit {proc.returncode}")
                server.pg_ctl("start")
                continue
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=300)
            print(f"  run {kill}: exit {proc.returncode}")
        final = start_load(urls["soak_faults"], path)
        out, err = final.communicate(timeout=3600)
        if final.returncode != 0:
            raise SystemExit(f"final run failed: {err}")
        report = json.loads(out)
        clean = start_load(urls["soak_clean"], path)
        clean.communicate(timeout=3600)
        identity = report["read"] == report["landed"] + report["duplicates"] + report["rejected"]
        faulted, expected = (snapshot(make_engine(urls[n])) for n in ("soak_faults", "soak_clean"))
        same = faulted == expected
        print(f"accounting identity holds: {identity}; tables equal a clean run: {same}")
        if not (identity and same):
            raise SystemExit(1)


if __name__ == "__main__":
    main()
