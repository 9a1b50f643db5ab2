-- jitsuin schema, version 6: the ACME server (RFC 8555). Nonces live here so that every server
-- process sharing the store accepts every other's (§6.5). Resource ids are random URL-safe text;
-- JSON columns hold canonical JSON; times are ISO 8601 UTC text as everywhere else.

CREATE TABLE acme_nonces (
    value       TEXT PRIMARY KEY,
    expires_at  TEXT NOT NULL
);
CREATE INDEX acme_nonces_expiry ON acme_nonces (expires_at);

-- EAB keys an operator makes for the tls-server profile, each with its policy. The MAC key is
-- sealed (AES-256-GCM under the RA secret), never stored in clear. Personal EAB keys are not
-- here: they belong to an application (applications.eab_key_sealed, kid = enrollment ID).
CREATE TABLE acme_eab_keys (
    kid               TEXT PRIMARY KEY,
    key_sealed        BLOB NOT NULL,
    allowed           TEXT NOT NULL,     -- JSON array: DNS suffixes and IP networks
    lifetime_days     INTEGER NOT NULL,  -- validity of the certificates issued under it
    max_certificates  INTEGER,           -- NULL: no limit
    expires_at        TEXT,              -- the binding must be used before this
    note              TEXT,
    created_by        TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    used_at           TEXT,              -- single use: the account it was bound to
    account_id        TEXT,
    disabled_at       TEXT
);

CREATE TABLE acme_accounts (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    thumbprint      TEXT NOT NULL UNIQUE,   -- RFC 7638 of the current key
    jwk             TEXT NOT NULL,          -- the public key's thumbprint members, JSON
    contact         TEXT NOT NULL,          -- JSON array of mailto: URLs
    status          TEXT NOT NULL CHECK (status IN ('valid', 'deactivated', 'revoked')),
    kind            TEXT NOT NULL CHECK (kind IN ('personal', 'tls-server')),
    eab_kid         TEXT NOT NULL UNIQUE,   -- an EAB binding makes one account, once
    eab_alg         TEXT NOT NULL,
    application_id  TEXT REFERENCES applications(id),
    terms_agreed    INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

CREATE TABLE acme_authorizations (
    seq               INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    account_id        TEXT NOT NULL REFERENCES acme_accounts(id),
    identifier_type   TEXT NOT NULL,
    identifier_value  TEXT NOT NULL,
    wildcard          INTEGER NOT NULL DEFAULT 0,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'valid', 'invalid', 'deactivated',
                                                      'expired', 'revoked')),
    expires_at        TEXT NOT NULL,
    created_at        TEXT NOT NULL
);
CREATE INDEX acme_authorizations_reuse
    ON acme_authorizations (account_id, identifier_type, identifier_value, status);

CREATE TABLE acme_challenges (
    seq           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    authz_id      TEXT NOT NULL REFERENCES acme_authorizations(id),
    type          TEXT NOT NULL,
    token         TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),
    validated_at  TEXT,
    error         TEXT,       -- problem document JSON
    updated_at    TEXT NOT NULL
);
CREATE INDEX acme_challenges_authz ON acme_challenges (authz_id);

CREATE TABLE acme_orders (
    seq                     INTEGER PRIMARY KEY,   -- the orders list cursor (§7.1.2.1)
    id                      TEXT NOT NULL UNIQUE,
    account_id              TEXT NOT NULL REFERENCES acme_accounts(id),
    status                  TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'processing',
                                                            'valid', 'invalid')),
    expires_at              TEXT NOT NULL,
    identifiers             TEXT NOT NULL,   -- JSON array of {type, value}
    profile                 TEXT NOT NULL,
    replaces                TEXT,            -- RFC 9773 certificate identifier
    error                   TEXT,            -- problem document JSON
    csr_der                 BLOB,
    reenrollment_id         INTEGER,         -- a personal renewal waiting for an operator
    certificate_generation  INTEGER,
    certificate_serial      TEXT,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL
);
CREATE INDEX acme_orders_account ON acme_orders (account_id, seq);
CREATE INDEX acme_orders_certificate ON acme_orders (certificate_generation, certificate_serial);
CREATE INDEX acme_orders_replaces ON acme_orders (replaces);

CREATE TABLE acme_order_authorizations (
    order_id  TEXT NOT NULL REFERENCES acme_orders(id),
    authz_id  TEXT NOT NULL REFERENCES acme_authorizations(id),
    PRIMARY KEY (order_id, authz_id)
);
