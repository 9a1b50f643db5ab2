-- jitsuin schema, version 5: find an application's audit entries (two-person rule, disclosure)
-- and a person's applications without scanning.

CREATE INDEX audit_log_target ON audit_log (target, action);
