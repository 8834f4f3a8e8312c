-- name: report_attribution (template)
-- Last-touch attribution of a conversions table's rows to Drip's emails.  The names in
-- braces are identifiers checked against the catalog and quoted by loader/attribution.py (a
-- column the table lacks is NULL; without an identifies table, :has_identifies is false).
-- Values are bound: :since/:until bound the conversion time (NULL: open), :window is an
-- interval, :event selects the conversion event (NULL: every row), :has_value says whether
-- a value column was given.  Rules, person key and figures: docs/analysts.md "Attribution".
WITH conversions AS (
    SELECT row_number() OVER () AS conversion_no,
           {c_timestamp} AS converted_at,
           nullif(CAST({c_user_id} AS text), '') AS user_id,
           nullif(CAST({c_anonymous_id} AS text), '') AS anonymous_id,
           nullif(lower(trim(CAST({c_email} AS text))), '') AS email,
           CAST({c_value} AS numeric) AS value
    FROM {conversions} c
    WHERE {c_timestamp} IS NOT NULL
      AND (CAST(:since AS timestamptz) IS NULL OR {c_timestamp} >= CAST(:since AS timestamptz))
      AND (CAST(:until AS timestamptz) IS NULL OR {c_timestamp} < CAST(:until AS timestamptz))
      AND (CAST(:event AS text) IS NULL
           OR {c_event} = CAST(:event AS text) OR {c_event_text} = CAST(:event AS text))
), identified AS (
    -- rule 3: who the conversion source's own identify calls say an email belongs to
    SELECT DISTINCT nullif(CAST({i_anonymous_id} AS text), '') AS anonymous_id,
           nullif(CAST({i_user_id} AS text), '') AS user_id,
           lower(trim(CAST(coalesce({i_email}, {i_traits_email}) AS text))) AS email
    FROM {identifies} i
    WHERE CAST(:has_identifies AS boolean)
      AND nullif(lower(trim(CAST(coalesce({i_email}, {i_traits_email}) AS text))), '')
          IS NOT NULL
), touches AS (
    -- every touch that can explain a conversion in range: [since - window, until), read once
    SELECT t.id, t."timestamp" AS touched_at, t.email_id, t.email_subject,
           coalesce(t.context_drip_subscriber_id, t.user_id, t.anonymous_id) AS person,
           t.user_id, t.anonymous_id,
           nullif(lower(trim(t.context_traits_email)), '') AS email,
           nullif(lower(trim(s.email)), '') AS subscriber_email
    FROM {touch_table} t
    LEFT JOIN {subscribers} s ON s.id = t.context_drip_subscriber_id
    WHERE t.email_id IS NOT NULL
      AND (CAST(:since AS timestamptz) IS NULL
           OR t."timestamp" >= CAST(:since AS timestamptz) - CAST(:window AS interval))
      AND (CAST(:until AS timestamptz) IS NULL OR t."timestamp" < CAST(:until AS timestamptz))
), candidates AS (
    -- every touch of the same person in the window, with the rule that matched it: one
    -- hash join per rule
    SELECT c.conversion_no, c.converted_at, c.value, 1 AS rule,
           t.id, t.touched_at, t.email_id, t.person
    FROM conversions c
    JOIN touches t ON t.user_id = c.user_id
    WHERE t.touched_at BETWEEN c.converted_at - CAST(:window AS interval) AND c.converted_at
    UNION ALL
    SELECT c.conversion_no, c.converted_at, c.value, 2,
           t.id, t.touched_at, t.email_id, t.person
    FROM conversions c
    JOIN touches t ON t.email = c.email
    WHERE t.touched_at BETWEEN c.converted_at - CAST(:window AS interval) AND c.converted_at
    UNION ALL
    -- rule 2 with the subscriber's current email (Drip's subscribers dimension)
    SELECT c.conversion_no, c.converted_at, c.value, 2,
           t.id, t.touched_at, t.email_id, t.person
    FROM conversions c
    JOIN touches t ON t.subscriber_email = c.email
    WHERE t.touched_at BETWEEN c.converted_at - CAST(:window AS interval) AND c.converted_at
    UNION ALL
    SELECT c.conversion_no, c.converted_at, c.value, 3,
           t.id, t.touched_at, t.email_id, t.person
    FROM (
        SELECT c.conversion_no, c.converted_at, c.value, i.email
        FROM conversions c JOIN identified i ON i.anonymous_id = c.anonymous_id
        UNION ALL  -- a conversion found both ways: DISTINCT ON in credited keeps one
        SELECT c.conversion_no, c.converted_at, c.value, i.email
        FROM conversions c JOIN identified i ON i.user_id = c.user_id
    ) c
    JOIN touches t ON t.email = c.email
    WHERE t.touched_at BETWEEN c.converted_at - CAST(:window AS interval) AND c.converted_at
    UNION ALL
    SELECT c.conversion_no, c.converted_at, c.value, 4,
           t.id, t.touched_at, t.email_id, t.person
    FROM conversions c
    JOIN touches t ON t.anonymous_id = c.anonymous_id
    WHERE t.touched_at BETWEEN c.converted_at - CAST(:window AS interval) AND c.converted_at
), credited AS (
    -- the first rule that finds a touch in the window decides; its latest touch wins
    SELECT DISTINCT ON (conversion_no) conversion_no, converted_at, value, touched_at,
           email_id, person
    FROM candidates
    ORDER BY conversion_no, rule, touched_at DESC, id DESC
), per_email AS (
    SELECT email_id,
           -- the latest subject wins, as in the email_performance view
           (array_agg(email_subject ORDER BY touched_at DESC, id DESC)
               FILTER (WHERE email_subject IS NOT NULL))[1] AS email_subject,
           count(*) AS touches,
           count(DISTINCT person) AS people_touched
    FROM touches
    GROUP BY email_id
), converted AS (
    SELECT email_id,
           count(*) AS conversions,
           count(DISTINCT person) AS people_converted,
           sum(value) AS value,
           percentile_cont(0.5) WITHIN GROUP (
               ORDER BY extract(epoch FROM converted_at - touched_at) / 3600
           ) AS median_hours_to_convert
    FROM credited
    GROUP BY email_id
), report AS (
    SELECT p.email_id, p.email_subject, p.touches, p.people_touched,
           coalesce(v.conversions, 0) AS conversions,
           coalesce(v.people_converted, 0) AS people_converted,
           CAST(coalesce(v.people_converted, 0) AS numeric) / p.people_touched AS conversion_rate,
           CASE WHEN CAST(:has_value AS boolean) THEN coalesce(v.value, 0) END AS value,
           v.median_hours_to_convert
    FROM per_email p
    LEFT JOIN converted v ON v.email_id = p.email_id
    UNION ALL
    SELECT NULL, '(unattributed)', NULL, NULL, count(*), NULL, NULL,
           CASE WHEN CAST(:has_value AS boolean) THEN coalesce(sum(c.value), 0) END, NULL
    FROM conversions c
    WHERE NOT EXISTS (SELECT FROM credited cr WHERE cr.conversion_no = c.conversion_no)
)
SELECT * FROM report
ORDER BY email_id IS NULL, conversions DESC, email_id
