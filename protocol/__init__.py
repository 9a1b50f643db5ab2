"""jitsuin.protocol: sans-IO wire formats (problem documents, JWS, ACME objects, EST bodies)."""
