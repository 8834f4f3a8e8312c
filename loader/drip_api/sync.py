"""Sync: copy Drip's own records (subscribers, campaigns, broadcasts, workflows, tags, custom
fields) from its REST API into the ``drip_*`` tables (``drip-loader drip sync``).

Drip's API has no "updated since" filter, so every sync is a full refresh, applied as a diff:

* the pages of one resource are staged in a temporary table as they arrive (constant
  memory; a record met twice while paging counts once);
* then ONE transaction per table upserts every staged row (``synced_at`` = this sync,
  ``deleted_at`` cleared) and marks the rows Drip no longer lists ``deleted_at`` (never
  dropped).  Analysts querying meanwhile see the old or the new table, never half of it.

A sync that stops (``--max-wait`` passed, Drip refusing, the database gone) leaves every
table it finished wholly new and the others wholly as they were; the next sync starts over.
Each sync is a row in ``_runs`` (command ``drip sync``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Identity,
    MetaData,
    Table,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from ..config import DEFAULT_MAX_WAIT, DripSettings, Settings
from ..domain.drip_resources import RESOURCES, SYNC_COMMAND, DripResource, to_row
from ..progress import QUIET, Progress
from ..results import Rows
from ..warehouse.db import open_database, translating
from ..warehouse.migrate import ensure_schema
from ..warehouse.runs import recorded_run
from ..warehouse.tables import build_metadata
from .client import DripClient, resolve_account


@dataclass
class TableSync:
    """What one sync did to one table."""

    seen: int = 0
    """Records Drip listed (each id once): the table's rows not marked deleted afterwards."""
    added: int = 0
    """Rows new to the table (or listed again after being marked deleted)."""
    deleted: int = 0
    """Rows Drip no longer lists, marked ``deleted_at`` by this sync."""


@dataclass
class SyncReport:
    """Summary of one ``drip sync``, printed by the CLI."""

    load_id: str
    started_at: datetime
    account_id: str | None = None
    tables: dict[str, TableSync] = field(default_factory=dict)
    requests: int = 0
    waited_seconds: float = 0.0
    rate_limited: int = 0
    """429 answers waited out."""
    retried: int = 0
    """5xx answers and timeouts retried."""
    rate_remaining: int | None = None
    """Drip's ``X-RateLimit-Remaining`` at the end (requests left this hour)."""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["started_at"] = self.started_at.isoformat()
        return values

    def lines(self) -> list[str]:
        left = (
            f"; {self.rate_remaining:,} requests left this hour"
            if self.rate_remaining is not None
            else ""
        )
        return [
            f"Drip sync of account {self.account_id} in {self.seconds:.2f} s: "
            f"{self.requests:,} request(s), waited {self.waited_seconds:g} s "
            f"({self.rate_limited} rate-limited, {self.retried} retried){left}",
            f"  {'table':<22}{'in Drip':>10}{'new':>10}{'deleted':>10}",
            *(
                f"  {table:<22}{done.seen:>10,}{done.added:>10,}{done.deleted:>10,}"
                for table, done in self.tables.items()
            ),
        ]

    def rows(self) -> Rows:
        return Rows(
            ("table", "in_drip", "new", "deleted"),
            [(t, done.seen, done.added, done.deleted) for t, done in self.tables.items()],
        )


def sync_account(
    settings: Settings,
    drip: DripSettings,
    *,
    max_wait: float = DEFAULT_MAX_WAIT,
    migrate_first: bool = True,
    announce: Callable[[str], None] = lambda line: None,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncReport:
    """Refresh every ``drip_*`` table from the Drip account's API, one table at a time.

    Args:
        settings: the warehouse.
        drip: the Drip account and token.
        max_wait: seconds this run may wait for Drip (rate limit, retries) in all.
        announce: told every wait, and the embedded server's messages.
        progress: told each page (total: the endpoint's ``total_pages``).
        sleep: how to wait (tests pass a fake clock).

    Raises:
        LoaderError: the sync could not complete (:class:`~loader.errors.DripGaveUp` past
            ``max_wait``); finished tables stay new, the others as they were.
    """
    started = time.perf_counter()
    report = SyncReport(load_id=uuid.uuid4().hex, started_at=datetime.now(UTC))
    progress = progress or QUIET
    with (
        DripClient(drip, max_wait=max_wait, announce=announce, sleep=sleep) as client,
        open_database(settings, announce=announce) as engine,
    ):
        ensure_schema(engine, schema=settings.schema, migrate_first=migrate_first)

        def counts() -> dict[str, Any]:
            report.requests = client.requests
            report.waited_seconds = client.waits.seconds
            report.rate_limited = client.waits.rate_limited
            report.retried = client.waits.retried
            report.rate_remaining = client.rate_remaining
            report.seconds = round(time.perf_counter() - started, 3)
            recorded = report.as_dict()
            for name in ("load_id", "started_at"):
                recorded.pop(name)
            return recorded

        # A token that reaches no account (or several) fails here, before the sync touched
        # anything; from here on the ledger records the end whatever it is: completed,
        # failed (Drip gave up past --max-wait, ...) or interrupted (Ctrl-C, SIGTERM).
        report.account_id = resolve_account(client, drip.account_id)
        with recorded_run(
            engine,
            schema=settings.schema,
            load_id=report.load_id,
            command=SYNC_COMMAND,
            sources=f"drip account {report.account_id}",
            counts=counts,
        ):
            for resource in RESOURCES.values():
                report.tables[resource.table] = sync_resource(
                    engine,
                    client,
                    resource,
                    schema=settings.schema,
                    account_id=report.account_id,
                    synced_at=report.started_at,
                    progress=progress,
                )
    return report


def sync_resource(
    engine: Engine,
    client: DripClient,
    resource: DripResource,
    *,
    schema: str,
    account_id: str,
    synced_at: datetime,
    progress: Progress,
) -> TableSync:
    """Stage every page of ``resource``, then apply the diff to its table in one transaction."""
    target = build_metadata(schema).tables[f"{schema}.{resource.table}"]
    stage = _stage_table(target)
    description = f"Drip {resource.name}"
    progress.start(description, None)

    def paged(page: int, total_pages: int) -> None:
        if page == 1:
            progress.start(description, total_pages)
        progress.advance(1)

    with translating(), engine.connect() as conn:
        stage.create(conn)
        conn.commit()
        try:
            for items in client.pages(
                f"{account_id}/{resource.path}",
                resource.envelope,
                per_page=resource.per_page,
                params=dict(resource.params),
                on_page=paged,
            ):
                rows = [row for row in (to_row(resource, item) for item in items) if row]
                if rows:
                    _stage_rows(conn, stage, rows)
                    conn.commit()
            result = _apply(conn, target, stage, key=resource.key, synced_at=synced_at)
            stage.drop(conn)
            conn.commit()
        except BaseException:
            # The temporary table lives as long as the session: closing the connection for
            # real (not back to the pool) drops it, whatever state the session is in.
            conn.invalidate()
            raise
    return result


def _stage_table(target: Table) -> Table:
    return Table(
        f"_stage_{target.name}",
        MetaData(),
        Column("_seq", BigInteger, Identity(), nullable=False),
        *(Column(c.name, c.type) for c in target.columns if c.name not in _STAMPS),
        prefixes=["TEMPORARY"],
    )


_STAMPS = ("synced_at", "deleted_at")


def _stage_rows(conn: Connection, stage: Table, rows: list[dict[str, Any]]) -> None:
    # A plain INSERT of many rows is sent as multi-row VALUES batches (SQLAlchemy's
    # insertmanyvalues), not a round trip per record.
    conn.execute(insert(stage), rows)


def _apply(
    conn: Connection, target: Table, stage: Table, *, key: str, synced_at: datetime
) -> TableSync:
    """The diff, in the caller's one transaction: upsert what Drip listed, mark what it did not."""
    # Two syncs applying the same table at once would lock its rows in different orders.
    name = f"drip-loader sync {target.schema}.{target.name}"
    conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(name))))
    columns = [c.name for c in stage.columns if c.name != "_seq"]
    # Drip's pages can shift while we read them: a record met twice counts once (the later).
    later = stage.alias("later")
    conn.execute(delete(stage).where(stage.c[key] == later.c[key], stage.c._seq < later.c._seq))
    listed = stage.c[key]
    result = TableSync()
    result.seen = int(conn.execute(select(func.count()).select_from(stage)).scalar_one())
    result.added = int(
        conn.execute(
            select(func.count())
            .select_from(stage)
            .where(~exists().where(target.c[key] == listed, target.c.deleted_at.is_(None)))
        ).scalar_one()
    )
    upsert = pg_insert(target).from_select(
        [*columns, *_STAMPS],
        select(
            *(stage.c[name] for name in columns),
            literal(synced_at, target.c.synced_at.type),
            null(),
        ),
    )
    conn.execute(
        upsert.on_conflict_do_update(
            index_elements=[key],
            set_={
                **{name: upsert.excluded[name] for name in columns if name != key},
                "synced_at": upsert.excluded.synced_at,
                "deleted_at": None,
            },
        )
    )
    gone = conn.execute(
        update(target)
        .where(target.c.deleted_at.is_(None), ~exists().where(listed == target.c[key]))
        .values(deleted_at=synced_at)
    )
    result.deleted = int(gone.rowcount)
    return result
