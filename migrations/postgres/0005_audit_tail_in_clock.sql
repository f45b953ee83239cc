-- The audit chain's tail lives in the feed clock's row (docs/adr/0005, "Ingest path"): one
-- `UPDATE feed_clock … RETURNING` takes the one lock every writer serializes on and hands out
-- the feed positions and the chain's tail together, so the serialized end of a write
-- transaction is two statements and its COMMIT.
ALTER TABLE feed_clock ADD COLUMN audit_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE feed_clock ADD COLUMN audit_hash TEXT NOT NULL
    DEFAULT '0000000000000000000000000000000000000000000000000000000000000000';
UPDATE feed_clock
SET audit_seq = COALESCE((SELECT MAX(seq) FROM audit_log), 0),
    audit_hash = COALESCE(
        (SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1),
        '0000000000000000000000000000000000000000000000000000000000000000')
WHERE id = 1;
