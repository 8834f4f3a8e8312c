"""drip-loader: Drip email webhook events into a Segment-shaped Postgres warehouse."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .config import Settings
from .errors import LoaderError

if TYPE_CHECKING:
    from .pipeline.run import RunReport, run_pipeline

__all__ = ["LoaderError", "RunReport", "Settings", "__version__", "run_pipeline"]


def __getattr__(name: str) -> Any:
    # The pipeline (SQLAlchemy, psycopg2) is imported when first asked for, so that
    # `import loader` and `drip-loader --help` stay light.
    if name in ("RunReport", "run_pipeline"):
        from .pipeline import run as pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
