-- Hand an existing warehouse schema, created while drip-loader connected as another role
-- (a superuser, say), to drip_loader: the schema and every table, view, sequence and
-- function in it. Run after roles.sql (whose CREATE SCHEMA then does nothing), as a
-- superuser connected to the warehouse database, with drip-loader stopped:
--
--     psql -v ON_ERROR_STOP=1 -d warehouse -f deploy/postgres/adopt.sql

ALTER SCHEMA drip OWNER TO drip_loader;

DO $$
DECLARE
    object record;
BEGIN
    -- a table's indexes and its columns' sequences follow it
    FOR object IN
        SELECT c.oid::regclass AS name,
               CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                              WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind
        FROM pg_class c
        WHERE c.relnamespace = 'drip'::regnamespace
          AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
          AND NOT (c.relkind = 'S' AND EXISTS (
              SELECT FROM pg_depend d
              WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')
          ))
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO drip_loader', object.kind, object.name);
    END LOOP;
    FOR object IN
        SELECT p.oid::regprocedure AS name FROM pg_proc p WHERE p.pronamespace = 'drip'::regnamespace
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO drip_loader', object.name);
    END LOOP;
END
$$;

-- What the analysts could read before, they keep; the loader's new tables follow roles.sql's
-- default privileges.
GRANT SELECT ON ALL TABLES IN SCHEMA drip TO drip_analyst;
