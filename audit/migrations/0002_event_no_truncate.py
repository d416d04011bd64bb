"""PostgreSQL refuses TRUNCATE of the event table (UPDATE and DELETE are refused by the pgtrigger in 0001).

The test suite must still reset its database between transactional tests: a session that has set
itirp.allow_truncate = 'on' may truncate (the test settings do; production roles also lack the privilege).
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION audit_event_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF current_setting('itirp.allow_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit_event is append-only: TRUNCATE refused';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event;
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_refuse_truncate();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event;
DROP FUNCTION IF EXISTS audit_event_refuse_truncate();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
