-- Run after every `manage.py migrate` (docker-compose service `db-grants`), as a superuser or itirp_owner:
-- the event store, its hash records and its seals are insert-only for the application's role, whatever
-- the default privileges gave it when the migrations created them.
REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_event, audit_eventhash, audit_seal, audit_trail FROM itirp_app;
REVOKE ALL ON audit_event, audit_eventhash, audit_seal, audit_trail FROM PUBLIC;
GRANT SELECT, INSERT ON audit_event, audit_eventhash, audit_seal, audit_trail TO itirp_app;
-- The counter that numbers events (audit/migrations/0006) is moved only by its trigger, which runs as the
-- owner: the application's role may read where gapless numbering starts, never set the counter.
REVOKE ALL ON audit_sequence_counter FROM itirp_app, PUBLIC;
GRANT SELECT ON audit_sequence_counter TO itirp_app;
