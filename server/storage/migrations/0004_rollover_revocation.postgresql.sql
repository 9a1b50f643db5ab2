-- jitsuin schema, version 4 (PostgreSQL twin of 0004_rollover_revocation.sqlite.sql): link
-- certificates of CA rollovers (RFC 9810 §4.4), CRLs, and one counter table (CRL numbers increase
-- across every generation's key, docs/conformance.md R-01).

CREATE TABLE ca_links (
    old_generation  integer NOT NULL REFERENCES ca_generations(number),
    new_generation  integer NOT NULL REFERENCES ca_generations(number),
    old_with_new    bytea   NOT NULL,   -- the old public key signed by the new key
    new_with_old    bytea   NOT NULL,   -- the new public key signed by the old key
    PRIMARY KEY (old_generation, new_generation)
);

CREATE TABLE crls (
    number       bigint      PRIMARY KEY,
    generation   integer     NOT NULL REFERENCES ca_generations(number),
    this_update  timestamptz NOT NULL,
    next_update  timestamptz NOT NULL,
    der          bytea       NOT NULL
);
CREATE INDEX crls_generation ON crls (generation, number);

CREATE TABLE counters (
    name   text   PRIMARY KEY,
    value  bigint NOT NULL
);

CREATE INDEX certificates_status ON certificates (generation, status);
