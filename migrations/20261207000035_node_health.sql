-- Why a node is unreachable (the reconciler's last error), and the node daemon's version as it
-- last reported it (the panel checks it against its own).
ALTER TABLE nodes ADD COLUMN unreachable_reason TEXT;
ALTER TABLE nodes ADD COLUMN agent_version TEXT;
-- The host's own load beside what placement handed out, each sample as the node reported it
-- (NULL where the backend cannot say; see `Driver::host`). Network counters are totals.
ALTER TABLE node_samples ADD COLUMN host_cpu_permille BIGINT;
ALTER TABLE node_samples ADD COLUMN host_memory_used_mb BIGINT;
ALTER TABLE node_samples ADD COLUMN host_memory_total_mb BIGINT;
ALTER TABLE node_samples ADD COLUMN host_disk_used_mb BIGINT;
ALTER TABLE node_samples ADD COLUMN host_disk_total_mb BIGINT;
ALTER TABLE node_samples ADD COLUMN host_net_rx_bytes BIGINT;
ALTER TABLE node_samples ADD COLUMN host_net_tx_bytes BIGINT;
CREATE INDEX node_samples_node_at ON node_samples (node_id, at);
