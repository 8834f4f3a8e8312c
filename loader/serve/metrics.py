"""The Prometheus text exposition of ``GET /metrics`` (format 0.0.4) for the webhook receiver."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..counts import Counts
from .workers import WorkerState


@dataclass(kw_only=True)
class ServeReport(Counts):
    """What one ``serve`` process did (landing, transform, forwarding), returned when it stops."""

    load_id: str
    responses: dict[str, int] = field(default_factory=dict)
    """Webhook requests answered, by HTTP status."""

    def lines(self) -> list[str]:
        requests = ", ".join(f"{n:,} x {status}" for status, n in self.responses.items())
        return [
            f"Stopped after {self.seconds:,.0f} s. Requests: {requests or 'none'}. "
            f"Events landed {self.landed:,}, duplicates {self.duplicates:,}, "
            f"rejected {self.rejected:,}; transformed {self.transformed:,}."
        ]


def exposition(
    report: Counts,
    *,
    responses: Mapping[str, int],
    commits: int,
    queued: int,
    workers: list[WorkerState],
    lag: tuple[int, float] | None,
) -> str:
    """The metrics text: ``report``'s counts, webhook ``responses`` by status, the lander's
    ``commits`` and ``queued`` events, each worker's state, and the transform ``lag``
    (pending events, seconds; None when the database did not answer).
    """
    lines: list[str] = []

    def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {value:.15g}" for labels, value in samples)

    metric(
        "drip_loader_webhook_requests_total",
        "counter",
        "Webhook requests answered, by HTTP status.",
        [(f'{{status="{s}"}}', n) for s, n in responses.items()],
    )
    metric(
        "drip_loader_webhook_events_total",
        "counter",
        "Events received by webhook, by outcome (landed: new; duplicate: already stored).",
        [
            ('{outcome="landed"}', report.landed),
            ('{outcome="duplicate"}', report.duplicates),
            ('{outcome="rejected"}', report.rejected),
        ],
    )
    metric(
        "drip_loader_webhook_not_email_events_total",
        "counter",
        "Landed or duplicate events that are not email events (kept raw only).",
        [("", report.not_email)],
    )
    metric(
        "drip_loader_group_commits_total",
        "counter",
        "Landing transactions (each commits many requests).",
        [("", commits)],
    )
    metric(
        "drip_loader_queued_events",
        "gauge",
        "Events waiting for a landing transaction.",
        [("", queued)],
    )
    metric(
        "drip_loader_transformed_events_total",
        "counter",
        "Pending events this process mapped into the collection tables and tracks.",
        [("", report.transformed)],
    )
    metric(
        "drip_loader_transform_runs_total",
        "counter",
        "Passes of the background transform over the queue, empty ones included.",
        [("", sum(w.runs for w in workers if w.name == "transform"))],
    )
    metric(
        "drip_loader_worker_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the last step a background worker finished without error; 0: none yet.",
        [(f'{{worker="{w.name}"}}', round(w.last_success or 0, 3)) for w in workers],
    )
    metric(
        "drip_loader_worker_errors_total",
        "counter",
        "Steps of a background worker that failed (each is retried after a backoff).",
        [(f'{{worker="{w.name}"}}', w.errors) for w in workers],
    )
    metric(
        "drip_loader_worker_failing_seconds",
        "gauge",
        "Seconds a background worker has been failing without a success; 0: it is not.",
        [(f'{{worker="{w.name}"}}', round(w.failing_for(time.time()), 3)) for w in workers],
    )
    metric(
        "drip_loader_database_up",
        "gauge",
        "1 when the last database query of /metrics succeeded.",
        [("", 0 if lag is None else 1)],
    )
    if lag is not None:
        metric(
            "drip_loader_pending_events",
            "gauge",
            "Landed events waiting for the transform (from any process).",
            [("", lag[0])],
        )
        metric(
            "drip_loader_transform_lag_seconds",
            "gauge",
            "Age of the oldest event waiting for the transform; 0 when none.",
            [("", round(lag[1], 3))],
        )
    return "\n".join(lines) + "\n"
