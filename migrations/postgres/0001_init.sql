-- Facts about this server's database itself (schema origin, instance id, ...), as key/value text.
-- The case store arrives in later migrations; never edit an applied migration, add a new file.
CREATE TABLE server_info (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
