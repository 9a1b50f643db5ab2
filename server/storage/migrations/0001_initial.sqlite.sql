-- jitsuin schema, version 1: CA generations, issued certificates, the hash-chained audit log.
-- Times are ISO 8601 UTC text ('2026-11-25T19:43:28+00:00'); serials are lower-case hex text.

CREATE TABLE ca_generations (
    number          INTEGER PRIMARY KEY,
    certificate_der BLOB    NOT NULL,
    key_ref         TEXT    NOT NULL,   -- where the key lives: 'file:<path>' or 'pkcs11:<uri>'
    created_at      TEXT    NOT NULL
);

CREATE TABLE certificates (
    id              INTEGER PRIMARY KEY,
    generation      INTEGER NOT NULL REFERENCES ca_generations(number),
    serial          TEXT    NOT NULL,
    der             BLOB    NOT NULL,
    subscriber_id   TEXT,              -- NULL for the server's own TLS certificates
    subject         TEXT    NOT NULL,  -- RFC 4514 summary, for operators
    email           TEXT,
    profile         TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),
    not_before      TEXT    NOT NULL,
    not_after       TEXT    NOT NULL,
    issued_at       TEXT    NOT NULL,
    spki_sha256     TEXT    NOT NULL,
    UNIQUE (generation, serial),       -- SBR 7.1 / RFC 5280 4.1.2.2: unique per CA
    UNIQUE (subscriber_id, spki_sha256) -- SEED-R2: a subscriber's key is certified once
);
CREATE INDEX certificates_subscriber ON certificates (subscriber_id);

CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    details    TEXT NOT NULL,   -- canonical JSON
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE
);

-- The audit log is append-only.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
