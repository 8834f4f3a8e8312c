-- name: _to_timestamptz(value text) (function)
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
