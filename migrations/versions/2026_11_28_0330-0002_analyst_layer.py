"""Analyst layer: the subscribers dimension and the views email_performance,
daily_email_activity and campaign_unsubscribes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 03:30:00

The function and the views below are frozen copies of ``sql/functions`` and ``sql/views``
as this revision installs them (alembic's "replaceable objects" cookbook, see
``loader.replaceable``): a later revision that changes one carries its new text and calls
``op.replace_view(new, replaces="0002.email_performance")``; this file never changes and
never reads ``sql/``, so upgrading an old warehouse step by step gives the same objects.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from loader.warehouse.replaceable import ReplaceableObject

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

to_timestamptz = ReplaceableObject(
    "_to_timestamptz(value text)",
    r"""-- name: _to_timestamptz(value text) (function)
-- A timestamp Drip sends as text inside the subscriber snapshot (created_at) as timestamptz,
-- or NULL when it is not an ISO 8601 date/time: such a field is not validated at landing,
-- and one odd value must never fail the statement that lands a whole chunk.  No offset
-- means UTC, as for occurred_at (spec decision), whatever the session's TimeZone.
-- String functions, not regular expressions: this runs once per subscriber per chunk on
-- the load path, and a regex match costs more than the cast itself.
RETURNS timestamptz
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
AS $$
BEGIN
    -- YYYY-MM-DD first (never read as MDY/DMY whatever DateStyle says), and only the
    -- characters of ISO 8601: keeps out words like 'now', 'today', 'epoch', 'infinity'
    IF length(value) < 10 OR substr(value, 5, 1) <> '-' OR substr(value, 8, 1) <> '-'
       OR translate(value, '0123456789-:.+TZtz ', '') <> '' THEN
        RETURN NULL;
    END IF;
    -- an offset is a trailing Z, or a + or - after the date
    IF upper(right(value, 1)) = 'Z' OR strpos(value, '+') > 0 OR strpos(substr(value, 11), '-') > 0 THEN
        RETURN CAST(value AS timestamptz);
    END IF;
    RETURN timezone('UTC', CAST(value AS timestamp));
EXCEPTION WHEN data_exception THEN  -- 2025-02-30, hour 25, an offset beyond 15:59, ...
    RETURN NULL;
END
$$
""",
)

email_performance = ReplaceableObject(
    "email_performance",
    r"""-- name: email_performance (view)
-- One row per email_id seen in any email table: how the email did, all time.  A recipient
-- is coalesce(delivery_id, user_id, anonymous_id); unique_* count distinct recipients.
-- Rates are NULL when their denominator is 0: many accounts never enable the Email
-- Delivered webhook, so "no deliveries" must not read as a rate of zero.
WITH email_events AS (
    SELECT event, email_id, email_subject, "timestamp", id,
           coalesce(delivery_id, user_id, anonymous_id) AS recipient
    FROM email_delivered
    UNION ALL
    SELECT event, email_id, email_subject, "timestamp", id, coalesce(delivery_id, user_id, anonymous_id)
    FROM email_opened
    UNION ALL
    SELECT event, email_id, email_subject, "timestamp", id, coalesce(delivery_id, user_id, anonymous_id)
    FROM email_link_clicked
    UNION ALL
    SELECT event, email_id, email_subject, "timestamp", id, coalesce(delivery_id, user_id, anonymous_id)
    FROM email_bounced
    UNION ALL
    SELECT event, email_id, email_subject, "timestamp", id, coalesce(delivery_id, user_id, anonymous_id)
    FROM email_marked_as_spam
), per_email AS (
    SELECT email_id,
           -- the latest subject wins (a renamed email shows its current subject); the id
           -- breaks ties between events of the same instant so the choice is stable
           (array_agg(email_subject ORDER BY "timestamp" DESC, id DESC)
               FILTER (WHERE email_subject IS NOT NULL))[1] AS email_subject,
           count(*) FILTER (WHERE event = 'email_delivered') AS delivered,
           count(*) FILTER (WHERE event = 'email_opened') AS opens,
           count(DISTINCT recipient) FILTER (WHERE event = 'email_opened') AS unique_opens,
           count(*) FILTER (WHERE event = 'email_link_clicked') AS clicks,
           count(DISTINCT recipient) FILTER (WHERE event = 'email_link_clicked') AS unique_clicks,
           count(*) FILTER (WHERE event = 'email_bounced') AS bounces,
           count(*) FILTER (WHERE event = 'email_marked_as_spam') AS spam_reports,
           min("timestamp") AS first_event_at,
           max("timestamp") AS last_event_at
    FROM email_events
    WHERE email_id IS NOT NULL
    GROUP BY email_id
)
SELECT email_id, email_subject, delivered, opens, unique_opens, clicks, unique_clicks,
       bounces, spam_reports,
       CAST(unique_opens AS numeric) / nullif(delivered, 0) AS open_rate,
       CAST(unique_clicks AS numeric) / nullif(delivered, 0) AS click_rate,
       CAST(unique_clicks AS numeric) / nullif(unique_opens, 0) AS click_to_open_rate,
       first_event_at, last_event_at
FROM per_email
""",
)

daily_email_activity = ReplaceableObject(
    "daily_email_activity",
    r"""-- name: daily_email_activity (view)
-- One row per UTC day and event slug (from tracks, which holds every event of the six
-- collections): how many events, and how many distinct people (user_id, else anonymous_id).
SELECT CAST(timezone('UTC', "timestamp") AS date) AS day,
       event,
       count(*) AS events,
       count(DISTINCT coalesce(user_id, anonymous_id)) AS unique_people
FROM tracks
GROUP BY 1, 2
""",
)

campaign_unsubscribes = ReplaceableObject(
    "campaign_unsubscribes",
    r"""-- name: campaign_unsubscribes (view)
-- One row per campaign_id for campaign-scoped unsubscribes, plus one row with a NULL
-- campaign_id for unsubscribe-from-all.  A campaign-scoped unsubscribe without a
-- campaign_id belongs to neither, so it is left out (it stays in email_unsubscribed).
SELECT campaign_id,
       (array_agg(campaign_name ORDER BY "timestamp" DESC, id DESC)
           FILTER (WHERE campaign_name IS NOT NULL))[1] AS campaign_name,
       count(DISTINCT coalesce(user_id, anonymous_id)) AS unsubscribes,
       min("timestamp") AS first_at,
       max("timestamp") AS last_at
FROM email_unsubscribed
WHERE (unsubscribe_scope = 'campaign' AND campaign_id IS NOT NULL) OR unsubscribe_scope = 'all'
GROUP BY campaign_id
""",
)

VIEWS = (email_performance, daily_email_activity, campaign_unsubscribes)


def _schema() -> str:
    return str(op.get_context().version_table_schema)


def _ts(name: str, **kwargs: object) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), **kwargs)  # type: ignore[arg-type]


def upgrade() -> None:
    schema = _schema()
    op.create_function(to_timestamptz)
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("email", sa.Text),
        sa.Column("user_id", sa.Text),
        sa.Column("status", sa.Text),
        sa.Column("tags", postgresql.JSONB),
        sa.Column("custom_fields", postgresql.JSONB),
        sa.Column("time_zone", sa.Text),
        sa.Column("lead_score", sa.Numeric),
        sa.Column("lifetime_value", sa.Numeric),
        _ts("created_at"),
        _ts("first_seen_at", nullable=False),
        _ts("last_seen_at", nullable=False),
        schema=schema,
        comment="One row per Drip subscriber id: the snapshot of its latest event.",
        # Every event of a known subscriber updates its row: free room on each page lets
        # Postgres update in place (HOT), without touching the indexes.
        postgresql_with={"fillfactor": 70},
    )
    # hash, not btree: an email is whatever Drip sent (a hostile one can exceed btree's
    # 2.7 kB row limit and would fail the whole load); lookups are by equality anyway.
    op.create_index(
        "ix_subscribers_email", "subscribers", ["email"], schema=schema, postgresql_using="hash"
    )
    for view in VIEWS:
        op.create_view(view)


def downgrade() -> None:
    for view in reversed(VIEWS):
        op.drop_view(view)
    op.drop_table("subscribers", schema=_schema())
    op.drop_function(to_timestamptz)
