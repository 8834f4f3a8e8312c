-- name: create_stage
-- A per-session staging table for one chunk of records.  COPY cannot skip duplicate keys,
-- so records are copied here (a temp table: no WAL) and moved on with ON CONFLICT.
CREATE TEMP TABLE IF NOT EXISTS _stage (
    _event_key  text COLLATE "C" NOT NULL,
    seq         integer     NOT NULL,  -- position in the chunk: the first copy of an event wins
    event       text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    is_email    boolean     NOT NULL,
    origin      text        NOT NULL,
    payload     jsonb       NOT NULL
) ON COMMIT DELETE ROWS
