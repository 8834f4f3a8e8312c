"""alembic environment: the URL and schema come from drip-loader's settings, never alembic.ini.

``drip-loader migrate`` passes an open connection and the schema in ``config.attributes``;
a plain ``alembic upgrade head`` builds them from ``DRIP_LOADER_*`` (the embedded server
when no URL is set), exactly like the CLI.
"""

from __future__ import annotations

import sys

from alembic import context
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateSchema

from loader.config import Settings
from loader.warehouse.db import open_database
from loader.warehouse.migrate import VERSION_TABLE, rename_legacy_version_table
from loader.warehouse.partitions import is_partition_name
from loader.warehouse.tables import build_metadata

config = context.config


def _schema() -> str:
    schema = config.attributes.get("schema")
    return str(schema) if schema else Settings.from_env().schema


def run_migrations(connection: Connection, schema: str) -> None:
    # Concurrent loaders may all try to migrate at start-up; one does, the others wait.
    connection.execute(
        select(func.pg_advisory_xact_lock(func.hashtext(f"drip-loader:migrate:{schema}")))
    )
    connection.execute(CreateSchema(schema, if_not_exists=True))
    # A warehouse migrated before the version table had spec §5's `_` prefix: rename it
    # under the lock, so alembic finds its revision and concurrent upgraders rename once.
    rename_legacy_version_table(connection, schema=schema)
    context.configure(
        connection=connection,
        target_metadata=build_metadata(schema),
        version_table=VERSION_TABLE,
        version_table_schema=schema,
        include_schemas=True,
        include_name=lambda name, type_, parent: (
            name == schema
            if type_ == "schema"
            # the monthly partitions come and go with the data: the metadata has their tables
            else type_ != "table" or not is_partition_name(str(name))
        ),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    schema = _schema()
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection, schema)
        return
    settings = Settings.from_env(schema=schema)
    announce = lambda line: print(line, file=sys.stderr)  # noqa: E731, T201
    with open_database(settings, announce=announce, null_pool=True) as engine:
        with engine.begin() as conn:
            run_migrations(conn, schema)


def run_offline() -> None:
    schema = _schema()
    context.configure(
        dialect_name="postgresql",
        target_metadata=build_metadata(schema),
        version_table=VERSION_TABLE,
        version_table_schema=schema,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
