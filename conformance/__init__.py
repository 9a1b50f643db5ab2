"""jitsuin.conformance: certificate rules and the pre-issuance lint gate."""
