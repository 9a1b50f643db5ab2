-- jitsuin schema, version 5 (PostgreSQL twin of 0005_audit_target.sqlite.sql): find an
-- application's audit entries (two-person rule, disclosure) and a person's applications without
-- scanning.

CREATE INDEX audit_log_target ON audit_log (target, action);
