-- jitsuin schema, version 2: the RA workflow (docs/flow.md), operators, the mail outbox,
-- revocation. Secrets are never stored in clear: access codes, PINs and operator tokens as keyed
-- hashes (HMAC-SHA256 with the server's RA key); the EAB MAC key and queued mail bodies encrypted
-- with AES-256-GCM under a key derived from it. The Individual Number is never stored (SEED-R8).

CREATE TABLE operators (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL CHECK (role IN ('reviewer', 'approver', 'admin')),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    disabled_at TEXT
);

CREATE TABLE applications (
    id                    TEXT PRIMARY KEY,
    version               INTEGER NOT NULL DEFAULT 1,  -- optimistic concurrency
    state                 TEXT NOT NULL,
    profile               TEXT NOT NULL,
    family_name           TEXT NOT NULL,
    given_name            TEXT NOT NULL,
    email                 TEXT NOT NULL,
    qualification_group   TEXT NOT NULL,
    qualification_number  TEXT NOT NULL,
    postal_address        TEXT NOT NULL,
    date_of_birth         TEXT NOT NULL,
    billing_addressee     TEXT NOT NULL CHECK (billing_addressee IN ('self', 'company')),
    billing_company       TEXT,
    created_by            TEXT NOT NULL,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    reviewed_by           TEXT,
    review                TEXT,     -- JSON: the last document review and its deficiencies
    tracking_number       TEXT,
    invoice_number        TEXT,
    invoice_amount        INTEGER,
    letter_returned_at    TEXT,
    paid_at               TEXT,
    paid_amount           INTEGER,
    enrollment_id         TEXT UNIQUE,
    access_code_hash      TEXT,
    access_attempts       INTEGER NOT NULL DEFAULT 0,
    access_used_at        TEXT,
    online_input_at       TEXT,
    approved_by           TEXT,
    approved_at           TEXT,
    pin_hash              TEXT,
    pin_expires_at        TEXT,
    pin_attempts          INTEGER NOT NULL DEFAULT 0,
    pin_used_at           TEXT,
    eab_key_sealed        BLOB,
    certificate_generation INTEGER,
    certificate_serial     TEXT,
    closed_reason         TEXT
);
CREATE INDEX applications_state ON applications (state);
CREATE INDEX applications_email ON applications (email);

CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY,
    application_id  TEXT NOT NULL REFERENCES applications(id),
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    body_sealed     BLOB,           -- AES-GCM; wiped once sent or superseded
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'superseded')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at);

ALTER TABLE certificates ADD COLUMN revoked_at TEXT;
ALTER TABLE certificates ADD COLUMN revocation_reason TEXT;
