"""The RA console under /ra/console/ on the HTTPS listener: the operator's half of the seed's
workflow in the browser, server-rendered, authenticated by the operator's TLS client certificate
(docs/operators.md)."""
