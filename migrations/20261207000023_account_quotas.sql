-- Per-account limits that override the operator's defaults (config `quota_*`); NULL keeps the
-- default. See `compute::quotas`.
CREATE TABLE account_quotas (
    user_id             TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    machines            BIGINT,
    vcpu                BIGINT,
    memory_mb           BIGINT,
    disk_gb             BIGINT,
    ipv4                BIGINT,
    consoles            BIGINT,
    background_commands BIGINT,
    updated_at          BIGINT NOT NULL
);
