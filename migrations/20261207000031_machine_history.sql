-- Resource history for the charts (`compute::history`): one row per running machine per minute,
-- kept a day, and one per hour, kept 30 days. CPU is percent of one CPU × 100 (integers keep
-- both databases exact); memory in bytes; network and disk are the bytes moved during the
-- step, with the machine's running totals kept beside them to count the next step from.
CREATE TABLE machine_minutes (
    instance_id   TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    at            BIGINT NOT NULL,
    cpu_centi     BIGINT NOT NULL,
    memory        BIGINT NOT NULL,
    memory_limit  BIGINT NOT NULL,
    net_rx        BIGINT NOT NULL,
    net_tx        BIGINT NOT NULL,
    disk_read     BIGINT NOT NULL,
    disk_write    BIGINT NOT NULL,
    total_net_rx     BIGINT NOT NULL,
    total_net_tx     BIGINT NOT NULL,
    total_disk_read  BIGINT NOT NULL,
    total_disk_write BIGINT NOT NULL,
    PRIMARY KEY (instance_id, at)
);
CREATE INDEX machine_minutes_at ON machine_minutes (at);

CREATE TABLE machine_hours (
    instance_id   TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    at            BIGINT NOT NULL,
    cpu_centi     BIGINT NOT NULL,
    memory        BIGINT NOT NULL,
    memory_limit  BIGINT NOT NULL,
    net_rx        BIGINT NOT NULL,
    net_tx        BIGINT NOT NULL,
    disk_read     BIGINT NOT NULL,
    disk_write    BIGINT NOT NULL,
    PRIMARY KEY (instance_id, at)
);
CREATE INDEX machine_hours_at ON machine_hours (at);
