"""ACME (RFC 8555) wire formats, sans-IO: error types, status tables, resource objects, request
payloads, identifiers, challenge types."""
