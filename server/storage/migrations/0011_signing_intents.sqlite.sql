-- jitsuin schema, version 11: an intent record for every certificate the CA key signs, written
-- BEFORE the signature (as Boulder reserves a serial before signing). The certificate is recorded
-- in the transaction that settles its intent as 'issued'; a signature that is then thrown away
-- (the request was redeemed by another process meanwhile) settles it as 'discarded'. A crash
-- between the signature and the commit leaves the intent 'reserved': `jitsuin audit verify`
-- lists those serials, signed or maybe signed, with no certificate record.
CREATE TABLE signing_intents (
    generation  INTEGER NOT NULL REFERENCES ca_generations(number),
    serial      TEXT    NOT NULL,   -- lower-case hex, as in certificates
    profile     TEXT    NOT NULL,
    tbs_sha256  TEXT,               -- SHA-256 of the TBSCertificate; NULL for the backfilled
    requester   TEXT    NOT NULL,   -- the actor the signature is for (applicant:…, acme:…, cli)
    target      TEXT    NOT NULL,   -- application/…, reenrollment/…, acme-order/…, tls/server
    reserved_at TEXT    NOT NULL,
    state       TEXT    NOT NULL DEFAULT 'reserved'
                CHECK (state IN ('reserved', 'issued', 'discarded')),
    settled_at  TEXT,
    PRIMARY KEY (generation, serial)  -- SBR 7.1 / RFC 5280 4.1.2.2: a serial is reserved once
);
CREATE INDEX signing_intents_open ON signing_intents (reserved_at) WHERE state = 'reserved';
-- The certificates issued before intents existed are accounted for as issued.
INSERT INTO signing_intents
    (generation, serial, profile, tbs_sha256, requester, target, reserved_at, state, settled_at)
    SELECT generation, serial, profile, NULL, 'migration', 'certificate', issued_at, 'issued',
           issued_at
    FROM certificates;
