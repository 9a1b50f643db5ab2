-- jitsuin schema, version 9 (the twin of the SQLite migration that drops its nonce table): on
-- PostgreSQL the ACME nonces stay in the table of version 6, where every server process of
-- `serve --workers N` redeems any of them once (RFC 8555 §6.5).
COMMENT ON TABLE acme_nonces IS
    'ACME nonces handed out by any server process and redeemed once by any (RFC 8555 section 6.5)';
