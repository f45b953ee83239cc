-- Facts about this server's database itself (schema origin, instance id, ...), as key/value text.
-- The case store arrives in later migrations; never edit an applied migration, add a new file.
-- Keep in step with migrations/postgres (same tables, each backend's native types).
CREATE TABLE server_info (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
