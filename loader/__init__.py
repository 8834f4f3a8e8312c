"""drip-loader: Drip email webhook events into a Segment-shaped Postgres warehouse."""

from __future__ import annotations

__version__ = "0.1.0"

from .config import Settings  # noqa: E402
from .errors import LoaderError  # noqa: E402
from .pipeline import RunReport, run_pipeline  # noqa: E402

__all__ = ["LoaderError", "RunReport", "Settings", "__version__", "run_pipeline"]
