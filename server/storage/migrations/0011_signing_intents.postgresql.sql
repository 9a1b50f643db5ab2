-- jitsuin schema, version 11 (PostgreSQL twin of 0011_signing_intents.sqlite.sql): an intent
-- record for every certificate the CA key signs, written BEFORE the signature; settled 'issued'
-- in the transaction that records the certificate, or 'discarded' when the signature is thrown
-- away. A crash between signature and commit leaves it 'reserved' for `jitsuin audit verify`.
CREATE TABLE signing_intents (
    generation  integer     NOT NULL REFERENCES ca_generations(number),
    serial      text        NOT NULL,
    profile     text        NOT NULL,
    tbs_sha256  text,
    requester   text        NOT NULL,
    target      text        NOT NULL,
    reserved_at timestamptz NOT NULL,
    state       text        NOT NULL DEFAULT 'reserved'
                CHECK (state IN ('reserved', 'issued', 'discarded')),
    settled_at  timestamptz,
    CONSTRAINT signing_intents_serial_unique PRIMARY KEY (generation, serial)  -- SBR 7.1
);
CREATE INDEX signing_intents_open ON signing_intents (reserved_at) WHERE state = 'reserved';
INSERT INTO signing_intents
    (generation, serial, profile, tbs_sha256, requester, target, reserved_at, state, settled_at)
    SELECT generation, serial, profile, NULL, 'migration', 'certificate', issued_at, 'issued',
           issued_at
    FROM certificates;
