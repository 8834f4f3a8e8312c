"""The exceptions drip-loader raises on purpose.

Every error the loader expects to happen in production derives from one base, so the CLI
edge can translate it into one line on stderr and a non-zero exit::

    LoaderError                      anything the loader reports as "could not complete"
    ├── ConfigError                  bad option or environment (schema name, URL, paths)
    ├── SourceError                  an input file or stdin cannot be read at all
    ├── DatabaseError                the database refused or failed a statement (terminal)
    │   ├── DatabaseUnavailable      cannot connect / connection lost (transient: retry later)
    │   └── DatabaseRefused          wrong password, no such database, missing privilege (fix it)
    ├── EmbeddedServerError          the embedded PostgreSQL could not be started
    ├── EmitError                    Segment unreachable or refusing (events stay pending)
    ├── ForwardingOff                forwarding was turned off (emit --off); emit --on turns it on
    ├── ServeError                   the webhook receiver cannot listen (address in use, ...)
    ├── DripApiError                 Drip's REST API refused a request or kept failing
    │   ├── DripNotFound             404: the webhook (or account) is not there
    │   └── DripGaveUp               waiting for Drip's rate limit would pass --max-wait
    ├── RejectNotFound               no reject has that id (``rejects show`` / ``retry``)
    ├── SegmentRowError              import-segment: a Segment row that cannot be copied as it is
    └── StepFailed                   a pipeline step failed; wraps the cause with the step and load id

Bad *records* are not exceptions: they are counted and stored in the rejects table, and
the run goes on.  Messages never contain a password or a Segment write key: URLs are
redacted before they are put into a message (see :func:`loader.config.redact_url`), and
the write key is scrubbed from anything a Segment endpoint answers.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .counts import Counts


class LoaderError(Exception):
    """Base of every error the loader reports to a user."""


class ConfigError(LoaderError):
    """An option or environment variable has a value the loader cannot use."""


class SourceError(LoaderError):
    """An input (file, directory, stdin) cannot be opened or read."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class DatabaseError(LoaderError):
    """The database failed a statement; retrying the same thing will fail again."""

    reason = "database error"
    """A few words for a health check: no host, port, user or advice."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached right now; a later retry may succeed."""

    reason = "database unavailable"


class DatabaseRefused(DatabaseError):
    """The database answers but refuses the loader: wrong password, no such role or
    database, a missing privilege.  A configuration error: nothing heals it but a fix.

    ``reason`` is its kind in a few words (``authentication failed``, ...).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class EmbeddedServerError(LoaderError):
    """The embedded PostgreSQL server could not be started or stopped."""


class EmitError(LoaderError):
    """Forwarding to Segment stopped early: it was unreachable, kept failing or refused the key.

    What Segment accepted before is marked sent; everything else stays pending for the
    next run (same ``messageId``).  ``report`` holds the counts up to the stop.
    """

    def __init__(self, message: str, *, report: Counts) -> None:
        super().__init__(message)
        self.report = report


class ForwardingOff(LoaderError):
    """Forwarding to Segment was turned off (``emit --off``); a plain ``emit`` does not turn
    it on again, ``emit --on`` does.  ``off_since`` is when it was turned off."""

    def __init__(self, off_since: datetime) -> None:
        super().__init__(
            f"forwarding to Segment is off since {off_since.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC "
            "(drip-loader emit --off), so nothing was sent; run `drip-loader emit --on` to turn "
            "it on again (it sends what stayed queued and every event received since)"
        )
        self.off_since = off_since


class ServeError(LoaderError):
    """The webhook receiver could not start listening (``drip-loader serve``)."""


class DripApiError(LoaderError):
    """Drip's REST API refused a request (4xx) or kept failing (5xx, timeouts).

    The message never holds the API token (:mod:`loader.drip_api.client` scrubs it).
    ``status`` is the HTTP status, or None when no response came.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DripNotFound(DripApiError):
    """Drip answered 404: the resource does not exist (or no longer does)."""


class DripGaveUp(DripApiError):
    """A sync stopped because waiting longer for the rate limit would pass ``--max-wait``.

    Tables finished before it are wholly new, the others wholly as they were.
    """


class RejectNotFound(LoaderError):
    """No row of ``_rejects`` has one of the ids asked for; ``ids`` are the missing ones."""

    def __init__(self, ids: list[int], *, schema: str) -> None:
        listed = ", ".join(str(i) for i in ids)
        super().__init__(
            f"no reject with id {listed} in schema {schema!r}: "
            "`drip-loader rejects list` shows the ids"
            if len(ids) == 1
            else f"no rejects with ids {listed} in schema {schema!r}: "
            "`drip-loader rejects list` shows the ids"
        )
        self.ids = ids


class SegmentRowError(LoaderError):
    """A row of a Segment-made schema that ``import-segment`` cannot copy as it is.

    ``table``, ``row_id`` and ``column`` say which (``column`` is None when the whole row is
    refused, e.g. for its id).  Batches committed before stay copied; the source is never
    changed.
    """

    def __init__(self, message: str, *, table: str, row_id: str, column: str | None) -> None:
        super().__init__(message)
        self.table = table
        self.row_id = row_id
        self.column = column


class StepFailed(LoaderError):
    """A pipeline step failed; ``step`` and ``load_id`` say where, ``__cause__`` why."""

    def __init__(self, step: str, load_id: str, cause: LoaderError) -> None:
        super().__init__(f"{step} failed (run {load_id}): {cause}")
        self.step = step
        self.load_id = load_id


class Terminated(KeyboardInterrupt):
    """SIGTERM asked the process to stop (:mod:`loader.warehouse.runs` raises it in the main thread).

    Not a :class:`LoaderError`: like Ctrl-C's KeyboardInterrupt it ends the run as
    ``interrupted``, and committed work is kept.
    """
