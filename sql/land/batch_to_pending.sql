-- name: land_batch_to_pending
-- Land a batch of validated records (the webhook receiver's group commit) in ONE
-- statement: no temporary stage and no COPY round trips, so on an autocommit connection a
-- whole group of requests costs one round trip.  :records is one JSON array of rows
-- [key, event, occurred_at, is_email, origin, payload].  Each event lands once (the first
-- copy wins, a retry with a changed subscriber snapshot is the same event), the new ones
-- are queued for the transform, and rejected records are kept with their reason.
WITH incoming AS (
    SELECT r ->> 0 AS _event_key, r ->> 1 AS event, CAST(r ->> 2 AS timestamptz) AS occurred_at,
           CAST(r ->> 3 AS boolean) AS is_email, r ->> 4 AS origin, r -> 5 AS payload, n
    FROM jsonb_array_elements(CAST(:records AS jsonb)) WITH ORDINALITY AS t (r, n)
), landed AS (
    INSERT INTO _raw_events (_event_key, event, occurred_at, received_at, is_email, _load_id, origin, payload)
    SELECT _event_key, event, occurred_at, now(), is_email, :load_id, origin, payload
    FROM incoming
    -- One lock order for every lander (the key's), so overlapping landings cannot
    -- deadlock; among copies of one event the first in the batch wins.  The key is unique
    -- exactly when the event id is: the id hashes occurred_at (spec §4).
    ORDER BY occurred_at, _event_key, n
    ON CONFLICT (occurred_at, _event_key) DO NOTHING
    RETURNING _event_key, occurred_at
), queued AS (
    INSERT INTO _pending (_event_key, occurred_at)
    SELECT _event_key, occurred_at FROM landed
), rejected AS (
    INSERT INTO _rejects (_load_id, reason, origin, raw_text, raw_bytes, raw_size, raw_sha256)
    SELECT :load_id, r.*
    FROM unnest(CAST(:reject_reasons AS text[]), CAST(:reject_origins AS text[]),
                CAST(:reject_texts AS text[]), CAST(:reject_bytes AS bytea[]),
                CAST(:reject_sizes AS bigint[]), CAST(:reject_sha256 AS text[])) AS r
    ON CONFLICT ON CONSTRAINT uq__rejects_raw_origin DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM landed) AS landed, (SELECT count(*) FROM rejected) AS rejected
