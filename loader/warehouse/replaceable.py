"""alembic operations for replaceable objects: views and functions (alembic cookbook recipe).

A view or function is created and dropped whole, so a revision that changes one must hold
its complete new text, and its downgrade the complete old text.  Following alembic's
"Replaceable Objects" cookbook, every revision keeps the text it installs as a module-level
:class:`ReplaceableObject` (a frozen copy of ``sql/views/*.sql`` or ``sql/functions/*.sql``
as it was when the revision was written), and a later revision replaces it with::

    op.replace_view(email_performance, replaces="0002.email_performance")          # upgrade
    op.replace_view(email_performance, replace_with="0002.email_performance")      # downgrade

which loads the old text from the old revision's module.  Old revisions therefore never
read the current ``sql/`` files and stay reproducible; a test checks that the head
revision's copies equal the files.

Object bodies use bare table names (like every file in ``sql/``): they are created with
``search_path`` set to the migrated schema for the duration of the statement.  Replacing
drops and re-creates (a view's columns may change): a view someone built on top of ours
makes the DROP fail, and the migration stops with Postgres naming that view; grants on a
re-created view come from ``ALTER DEFAULT PRIVILEGES`` (see "Connecting a BI tool" in docs/analysts.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic.operations import MigrateOperation, Operations

__all__ = ["ReplaceableObject"]


@dataclass(frozen=True)
class ReplaceableObject:
    """A named SQL object given by its full text.

    ``name`` is the view name, or the function name with its argument list
    (``_to_timestamptz(value text)``); ``sqltext`` is what follows ``CREATE VIEW name AS``
    or ``CREATE FUNCTION name``.  Both are constants written in a revision, never input.
    """

    name: str
    sqltext: str


class ReversibleOp(MigrateOperation):
    """An operation on a :class:`ReplaceableObject` that knows its inverse."""

    def __init__(self, target: ReplaceableObject) -> None:
        self.target = target

    @classmethod
    def invoke_for_target(cls, operations: Operations, target: ReplaceableObject) -> Any:
        return operations.invoke(cls(target))

    def reverse(self) -> ReversibleOp:
        raise NotImplementedError

    @classmethod
    def _get_object_from_version(cls, operations: Operations, ident: str) -> ReplaceableObject:
        version, name = ident.split(".")
        script = operations.get_context().script
        assert script is not None, "replace_* needs the revision scripts (run through alembic)"
        revision = script.get_revision(version)
        assert revision is not None, f"no revision {version}"
        obj = getattr(revision.module, name)
        assert isinstance(obj, ReplaceableObject), f"{ident} is not a ReplaceableObject"
        return obj

    @classmethod
    def replace(
        cls,
        operations: Operations,
        target: ReplaceableObject,
        replaces: str | None = None,
        replace_with: str | None = None,
    ) -> None:
        if replaces:
            old = cls._get_object_from_version(operations, replaces)
            drop_old, create_new = cls(old).reverse(), cls(target)
        elif replace_with:
            old = cls._get_object_from_version(operations, replace_with)
            drop_old, create_new = cls(target).reverse(), cls(old)
        else:
            raise TypeError("replaces or replace_with is required")
        operations.invoke(drop_old)
        operations.invoke(create_new)


@Operations.register_operation("create_view", "invoke_for_target")
@Operations.register_operation("replace_view", "replace")
class CreateViewOp(ReversibleOp):
    def reverse(self) -> ReversibleOp:
        return DropViewOp(self.target)


@Operations.register_operation("drop_view", "invoke_for_target")
class DropViewOp(ReversibleOp):
    def reverse(self) -> ReversibleOp:
        return CreateViewOp(self.target)


@Operations.register_operation("create_function", "invoke_for_target")
@Operations.register_operation("replace_function", "replace")
class CreateFunctionOp(ReversibleOp):
    def reverse(self) -> ReversibleOp:
        return DropFunctionOp(self.target)


@Operations.register_operation("drop_function", "invoke_for_target")
class DropFunctionOp(ReversibleOp):
    def reverse(self) -> ReversibleOp:
        return CreateFunctionOp(self.target)


def _schema(operations: Operations) -> str:
    """The migrated schema, quoted for DDL (env.py passes it as the version table schema)."""
    context = operations.get_context()
    schema = str(context.version_table_schema)
    return str(context.dialect.identifier_preparer.quote_schema(schema))


def _in_schema(operations: Operations, ddl: str) -> None:
    """Run ``ddl`` with bare names resolving in the migrated schema, then restore search_path.

    Transaction-local settings (migrations run in one transaction) and server-side
    save/restore, so the same statements work in offline (``--sql``) mode.
    """
    schema = str(operations.get_context().version_table_schema)
    operations.execute(
        sa.text(
            "SELECT set_config('drip_loader.saved_search_path', current_setting('search_path'),"
            " true), set_config('search_path', :schema, true)"
        ).bindparams(schema=schema)
    )
    # A literal ':' in the body (a regex, '10:00') must not be read as a bind parameter.
    operations.execute(sa.text(ddl.replace(":", "\\:")))
    operations.execute(
        "SELECT set_config('search_path', current_setting('drip_loader.saved_search_path'), true)"
    )


@Operations.implementation_for(CreateViewOp)
def _create_view(operations: Operations, operation: CreateViewOp) -> None:
    target = operation.target
    _in_schema(operations, f"CREATE VIEW {_schema(operations)}.{target.name} AS\n{target.sqltext}")


@Operations.implementation_for(DropViewOp)
def _drop_view(operations: Operations, operation: DropViewOp) -> None:
    operations.execute(f"DROP VIEW {_schema(operations)}.{operation.target.name}")


@Operations.implementation_for(CreateFunctionOp)
def _create_function(operations: Operations, operation: CreateFunctionOp) -> None:
    target = operation.target
    _in_schema(operations, f"CREATE FUNCTION {_schema(operations)}.{target.name}\n{target.sqltext}")


@Operations.implementation_for(DropFunctionOp)
def _drop_function(operations: Operations, operation: DropFunctionOp) -> None:
    operations.execute(f"DROP FUNCTION {_schema(operations)}.{operation.target.name}")
