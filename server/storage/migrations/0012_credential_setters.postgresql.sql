-- jitsuin schema, version 12 (PostgreSQL twin of 0012_credential_setters.sqlite.sql): who else
-- may know each operator credential (the two-person rule, docs/threat-model.md). token_set_by and
-- cert_bound_by hold a sorted JSON array (text) of the persons who set the API token or bound the
-- client certificate when that was not the operator themself: another operator (an admin through
-- the API, and whoever else knew that admin's credential) or "cli:<user>" for the host CLI.
-- '[]': the operator's own. The RA counts these persons as acting whenever the credential is
-- used, so that an admin who sets another operator's credential cannot approve as that operator
-- what the admin entered or reviewed.
ALTER TABLE operators ADD COLUMN token_set_by text;
ALTER TABLE operators ADD COLUMN cert_bound_by text;
-- Existing credentials: the actor of the newest audit entry that set them.
UPDATE operators SET token_set_by = (
    SELECT CASE WHEN a.actor = operators.name THEN '[]' ELSE json_build_array(a.actor)::text END
    FROM audit_log a
    WHERE a.target = 'operator/' || operators.name
      AND a.action IN ('operator.add', 'operator.rotate_token')
    ORDER BY a.seq DESC LIMIT 1
);
UPDATE operators SET cert_bound_by = (
    SELECT CASE WHEN a.actor = operators.name THEN '[]' ELSE json_build_array(a.actor)::text END
    FROM audit_log a
    WHERE a.target = 'operator/' || operators.name AND a.action = 'operator.bind_certificate'
    ORDER BY a.seq DESC LIMIT 1
) WHERE cert_sha256 IS NOT NULL;
