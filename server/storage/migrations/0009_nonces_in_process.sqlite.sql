-- jitsuin schema, version 9: a SQLite store keeps its ACME nonces in its process's memory
-- (SQLiteStore.acme_add_nonce: one server process per SQLite file, and redeeming a nonce is then
-- no write and no fsync per request), so the table of version 6 goes. Nonces handed out before
-- the upgrade are refused with badNonce, which clients retry (RFC 8555 §6.5).
DROP TABLE acme_nonces;
