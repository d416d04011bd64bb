-- Roles of an ITIRP database. Run once by the postgres image (/docker-entrypoint-initdb.d) as the bootstrap
-- superuser, in the application database, when the data directory is first created.
--   itirp_owner  owns the schema and runs the migrations (docker-compose service `migrate`);
--   itirp_app    what web, worker and beat connect as: reads and writes rows, never changes the schema.
-- The event store stays append-only for itirp_app even with every trigger off: grants.sql, run after each
-- migrate, takes UPDATE, DELETE and TRUNCATE on the audit tables away from it.
-- The passwords match docker-compose.yml; a real deployment sets its own.
CREATE ROLE itirp_owner LOGIN PASSWORD 'itirp_owner';
CREATE ROLE itirp_app LOGIN PASSWORD 'itirp_app';

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT, CREATE, TEMPORARY ON DATABASE %I TO itirp_owner', current_database());
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO itirp_app', current_database());
END
$$;

GRANT USAGE, CREATE ON SCHEMA public TO itirp_owner;
GRANT USAGE ON SCHEMA public TO itirp_app;

-- Every table and sequence the migrations create: row access for the application, nothing more
-- (no TRUNCATE, REFERENCES or TRIGGER).
ALTER DEFAULT PRIVILEGES FOR ROLE itirp_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO itirp_app;
ALTER DEFAULT PRIVILEGES FOR ROLE itirp_owner IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO itirp_app;

-- The audit sealer must see when other sessions' transactions began (pg_stat_activity.xact_start) to tell
-- a sequence gap that may still fill from one that never will (audit/integrity.py).
GRANT pg_read_all_stats TO itirp_app;
