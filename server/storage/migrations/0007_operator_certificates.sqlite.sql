-- jitsuin schema, version 7: an operator may also authenticate with one TLS client certificate
-- issued by this CA (RFC 8446 §4.4.2; RFC 5280 §4.2.1.12 id-kp-clientAuth). The operator row
-- keeps the certificate's SHA-256 fingerprint (lower-case hex of the DER) to find the operator by,
-- and the generation and serial (hex, as in certificates) to read its revocation status there on
-- every request: a revoked certificate stops working at once. NULL: no certificate bound.

ALTER TABLE operators ADD COLUMN cert_sha256 TEXT;
ALTER TABLE operators ADD COLUMN cert_generation INTEGER;
ALTER TABLE operators ADD COLUMN cert_serial TEXT;
-- One certificate authenticates one operator (SQLite cannot add a UNIQUE column; NULLs repeat).
CREATE UNIQUE INDEX operators_cert_sha256 ON operators (cert_sha256);
