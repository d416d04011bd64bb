"""Event sequence numbers taken at insert from a counter row held until commit: gapless on PostgreSQL.

A sequence object hands out numbers that a rolled-back transaction never uses, so a missing number could be
a rollback or a deleted event, and a deletion made before the next seal could pass for a rollback. With
the counter, a transaction that writes events holds the counter row until it commits or rolls back (and a
rollback gives its numbers back), so committed sequences are contiguous and become visible in order: from
`gapless_from` on, a missing sequence can only be a deleted event (audit.integrity.batches).
SQLite (the demo) has one writer at a time and AUTOINCREMENT already: nothing to do there.
"""

from django.db import migrations

CREATE = """
CREATE TABLE audit_sequence_counter (
    id smallint PRIMARY KEY CHECK (id = 1),
    last bigint NOT NULL,
    gapless_from bigint NOT NULL
);
INSERT INTO audit_sequence_counter (id, last, gapless_from)
    SELECT 1, COALESCE(MAX(sequence), 0), COALESCE(MAX(sequence), 0) + 1 FROM audit_event;
-- SECURITY DEFINER: the application's role numbers events without any right to change the counter itself.
-- The first event of a transaction locks the counter row (held until commit or rollback); the numbers of the
-- transaction are carried in a transaction-local setting, and each INSERT statement writes the last one back
-- once (so a COPY of millions of rows updates the row once, not per row). A rollback, of the transaction or
-- of a savepoint, takes back the setting and the write together.
CREATE FUNCTION audit_event_take_sequence() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT AS $$
DECLARE
    taken text := current_setting('itirp.event_sequence', true);
    next_sequence bigint;
BEGIN
    IF taken IS NULL OR taken = '' THEN
        SELECT last INTO next_sequence FROM audit_sequence_counter WHERE id = 1 FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'audit_sequence_counter has no row: events cannot be numbered';
        END IF;
    ELSE
        next_sequence := taken::bigint;
    END IF;
    next_sequence := next_sequence + 1;
    PERFORM set_config('itirp.event_sequence', next_sequence::text, true);
    NEW.sequence := next_sequence;
    RETURN NEW;
END $$;
CREATE FUNCTION audit_event_keep_sequence() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT AS $$
DECLARE
    taken text := current_setting('itirp.event_sequence', true);
BEGIN
    IF taken IS NOT NULL AND taken <> '' THEN
        UPDATE audit_sequence_counter SET last = taken::bigint WHERE id = 1;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER audit_event_gapless_sequence BEFORE INSERT ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_take_sequence();
CREATE TRIGGER audit_event_gapless_sequence_kept AFTER INSERT ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_keep_sequence();
"""

DROP = """
DROP TRIGGER IF EXISTS audit_event_gapless_sequence ON audit_event;
DROP TRIGGER IF EXISTS audit_event_gapless_sequence_kept ON audit_event;
DROP FUNCTION IF EXISTS audit_event_take_sequence();
DROP FUNCTION IF EXISTS audit_event_keep_sequence();
DROP TABLE IF EXISTS audit_sequence_counter;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_trail_identity")]

    operations = [migrations.RunPython(forwards, backwards)]
