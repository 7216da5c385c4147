-- Node load over time for the operator's charts: what placement held on each node at each
-- reconciler pass (every reconcile_interval_secs), kept 7 days.
CREATE TABLE node_samples (
    node_id         TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    at              BIGINT NOT NULL,
    used_vcpu       BIGINT NOT NULL,
    used_memory_mb  BIGINT NOT NULL,
    used_disk_gb    BIGINT NOT NULL,
    machines        BIGINT NOT NULL,
    PRIMARY KEY (node_id, at)
);
CREATE INDEX node_samples_at ON node_samples (at);
