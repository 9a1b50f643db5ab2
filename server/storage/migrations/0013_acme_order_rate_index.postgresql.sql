-- jitsuin schema, version 13: the orders of one account by creation time. The rate limit counts
-- an account's orders of the last hour on every newOrder (RFC 8555 §6.6; [acme]
-- orders_per_hour): with this index that count reads at most the orders of that hour, which the
-- limit bounds, instead of every order the account ever placed.
CREATE INDEX acme_orders_account_created ON acme_orders (account_id, created_at);
