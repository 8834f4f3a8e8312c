-- The roles of a drip-loader warehouse: drip_loader, which drip-loader connects as, and
-- drip_analyst, read-only, for BI tools. Run once as a superuser (or a role with CREATEROLE
-- that owns the database), connected to the warehouse database:
--
--     psql -v ON_ERROR_STOP=1 -d warehouse -f deploy/postgres/roles.sql
--
-- then give each role its password in psql:  \password drip_loader  and  \password drip_analyst
-- docs/operators.md, "Database privileges", says why each grant is needed.

SELECT current_database() AS warehouse \gset

-- The loader owns its schema: migrations create and change the tables, views, indexes and
-- the function in it; loads, serve, rebuild (TRUNCATE), collections (LOCK TABLE) and emit
-- write them. It connects, and creates temporary tables (the landing stage, drip sync's
-- pages). Nothing else: no superuser, no CREATE on the database, no other schema.
CREATE ROLE drip_loader LOGIN;
GRANT CONNECT, TEMPORARY ON DATABASE :"warehouse" TO drip_loader;
CREATE SCHEMA IF NOT EXISTS drip AUTHORIZATION drip_loader;  -- exists: see adopt.sql

-- Analysts read every table and view of the schema, and every one the loader creates later
-- (a new revision, a new partition): default privileges FOR ROLE drip_loader, the creator.
CREATE ROLE drip_analyst LOGIN;
GRANT CONNECT ON DATABASE :"warehouse" TO drip_analyst;
GRANT USAGE ON SCHEMA drip TO drip_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA drip TO drip_analyst;
ALTER DEFAULT PRIVILEGES FOR ROLE drip_loader IN SCHEMA drip GRANT SELECT ON TABLES TO drip_analyst;
