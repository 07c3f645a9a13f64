-- A password an admin reset is temporary: the user must choose their own
-- at the next login before any other desk page opens.
ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;

-- The audit-log explorer filters by actor and by action, newest first.
CREATE INDEX audit_log_actor ON audit_log(actor, seq);
CREATE INDEX audit_log_action ON audit_log(action, seq);
