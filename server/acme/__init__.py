"""The ACME server (RFC 8555): handlers, service, validation authority."""
