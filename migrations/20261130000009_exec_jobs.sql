-- Commands run inside machines in the background (reference 002 "Exec / Background Jobs"). A row,
-- not a task in memory: the replica running it renews `lease_until`; a row whose lease ran out was
-- left by a replica that died, and the sweep ends it with a reason (its process is killed).
-- status: pending | running | done | timeout | cancelled.
CREATE TABLE exec_jobs (
    id               TEXT PRIMARY KEY,
    instance_id      TEXT NOT NULL REFERENCES instances (id),
    user_id          TEXT NOT NULL REFERENCES users (id),
    command          TEXT NOT NULL,
    timeout_seconds  BIGINT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending',
    stdout           TEXT NOT NULL DEFAULT '',
    stderr           TEXT NOT NULL DEFAULT '',
    exit_code        BIGINT,
    truncated        BIGINT NOT NULL DEFAULT 0,
    duration_ms      BIGINT,
    reason           TEXT,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    lease_until      BIGINT,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT
);
CREATE INDEX exec_jobs_instance ON exec_jobs (instance_id, created_at);
CREATE INDEX exec_jobs_open ON exec_jobs (status, lease_until);
