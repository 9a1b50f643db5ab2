-- jitsuin schema, version 3: EST re-enrollment requests (RFC 7030 §4.2.2). A request is known by
-- the certificate being renewed and the SHA-256 of the CSR, so a retry of the same CSR finds it
-- (202 flow) and a double submission gets the one certificate (RFC 7030 §4.2.3).

CREATE TABLE reenrollments (
    id                   INTEGER PRIMARY KEY,
    previous_generation  INTEGER NOT NULL,
    previous_serial      TEXT NOT NULL,
    csr_sha256           TEXT NOT NULL,
    csr_der              BLOB NOT NULL,
    profile              TEXT NOT NULL,
    subscriber_id        TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'issued')),
    created_at           TEXT NOT NULL,
    decided_by           TEXT,
    decided_at           TEXT,
    certificate_generation INTEGER,
    certificate_serial   TEXT,
    UNIQUE (previous_generation, previous_serial, csr_sha256)
);
CREATE INDEX reenrollments_status ON reenrollments (status);
