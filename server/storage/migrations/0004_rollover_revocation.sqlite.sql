-- jitsuin schema, version 4: link certificates of CA rollovers (RFC 9810 §4.4), CRLs, and one
-- counter table (CRL numbers increase across every generation's key, docs/conformance.md R-01).

CREATE TABLE ca_links (
    old_generation  INTEGER NOT NULL REFERENCES ca_generations(number),
    new_generation  INTEGER NOT NULL REFERENCES ca_generations(number),
    old_with_new    BLOB NOT NULL,   -- the old public key signed by the new key
    new_with_old    BLOB NOT NULL,   -- the new public key signed by the old key
    PRIMARY KEY (old_generation, new_generation)
);

CREATE TABLE crls (
    number       INTEGER PRIMARY KEY,
    generation   INTEGER NOT NULL REFERENCES ca_generations(number),
    this_update  TEXT NOT NULL,
    next_update  TEXT NOT NULL,
    der          BLOB NOT NULL
);
CREATE INDEX crls_generation ON crls (generation, number);

CREATE TABLE counters (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);

CREATE INDEX certificates_status ON certificates (generation, status);
