-- Each user's own activity page and the operators' per-user filter read the audit log by actor,
-- newest first.
CREATE INDEX audit_log_actor ON audit_log (actor_id, created_at);
