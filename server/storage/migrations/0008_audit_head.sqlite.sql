-- jitsuin schema, version 8: the audit log's head, the seq and hash of its newest entry, kept by a
-- trigger in the transaction of every append. A hash chain alone cannot show that its newest
-- entries were cut off (what is left is still a valid chain); `jitsuin audit verify` compares
-- the chain's end with the head and names the missing entries.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
    SELECT 1, coalesce(max(seq), 0),
           coalesce((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1), printf('%064d', 0))
    FROM audit_log;
CREATE TRIGGER audit_head_follows AFTER INSERT ON audit_log
BEGIN UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1; END;
-- The head only moves forward and is never removed.
CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head WHEN NEW.seq <= OLD.seq
BEGIN SELECT RAISE(ABORT, 'audit_head only moves forward'); END;
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN SELECT RAISE(ABORT, 'audit_head cannot be removed'); END;
