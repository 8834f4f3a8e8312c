-- name: report_attribution (template)
-- Last-touch attribution of a conversions table's rows to Drip's emails.  The names in
-- braces are identifiers checked against the catalog and quoted by loader/attribution.py (a
-- column the table lacks is NULL; without an identifies table, :has_identifies is false).
-- Values are bound: :since/:until bound the conversion time (NULL: open), :window is an
-- interval, :event selects the conversion event (NULL: every row), :has_value says whether
-- a value column was given.  Rules, person key and figures: README "For analysts".
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
), conversion_keys AS (
    -- (rule, kind, key): a conversion matches a touch with the same (kind, key)
    SELECT conversion_no, converted_at, 1 AS rule, 'u' AS kind, user_id AS key
    FROM conversions WHERE user_id IS NOT NULL
    UNION ALL
    SELECT conversion_no, converted_at, 2, 'e', email
    FROM conversions WHERE email IS NOT NULL
    UNION ALL
    SELECT conversion_no, converted_at, 3, 'e', email
    FROM (
        SELECT c.conversion_no, c.converted_at, i.email
        FROM conversions c JOIN identified i ON i.anonymous_id = c.anonymous_id
        UNION
        SELECT c.conversion_no, c.converted_at, i.email
        FROM conversions c JOIN identified i ON i.user_id = c.user_id
    ) by_identify
    UNION ALL
    SELECT conversion_no, converted_at, 4, 'a', anonymous_id
    FROM conversions WHERE anonymous_id IS NOT NULL
), touches AS (
    -- every touch that can explain a conversion in range: [since - window, until)
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
), touch_keys AS (
    SELECT id, touched_at, 'u' AS kind, user_id AS key FROM touches WHERE user_id IS NOT NULL
    UNION ALL
    SELECT id, touched_at, 'e', email FROM touches WHERE email IS NOT NULL
    UNION ALL
    SELECT id, touched_at, 'e', subscriber_email FROM touches
    WHERE subscriber_email IS NOT NULL AND subscriber_email IS DISTINCT FROM email
    UNION ALL
    SELECT id, touched_at, 'a', anonymous_id FROM touches WHERE anonymous_id IS NOT NULL
), credited AS (
    -- the first rule that finds a touch in the window decides; its latest touch wins
    SELECT DISTINCT ON (k.conversion_no) k.conversion_no, tk.id AS touch_id
    FROM conversion_keys k
    JOIN touch_keys tk
      ON tk.kind = k.kind AND tk.key = k.key
     AND tk.touched_at <= k.converted_at
     AND tk.touched_at >= k.converted_at - CAST(:window AS interval)
    ORDER BY k.conversion_no, k.rule, tk.touched_at DESC, tk.id DESC
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
    SELECT t.email_id,
           count(*) AS conversions,
           count(DISTINCT t.person) AS people_converted,
           sum(c.value) AS value,
           percentile_cont(0.5) WITHIN GROUP (
               ORDER BY extract(epoch FROM c.converted_at - t.touched_at) / 3600
           ) AS median_hours_to_convert
    FROM credited cr
    JOIN touches t ON t.id = cr.touch_id
    JOIN conversions c ON c.conversion_no = cr.conversion_no
    GROUP BY t.email_id
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
