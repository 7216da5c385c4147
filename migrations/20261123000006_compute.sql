-- Compute: plans, images, templates, nodes, instances, snapshots, SSH keys, jobs, metering and
-- outgoing mail. One instance row serves references 002 (/api/vps), 000 (/v1/servers) and 004
-- (/v1/instances); see DESIGN.md "API surfaces" for the state mapping.

-- What a machine costs and how big it is. `kind` picks the driver: vm (libvirt) | container (docker).
CREATE TABLE plans (
    id                  TEXT PRIMARY KEY,
    -- Short stable name used by /v1/servers `plan` and /v1/instances `spec.type` ("nano", "c2-4g").
    slug                TEXT NOT NULL,
    name                TEXT NOT NULL,
    kind                TEXT NOT NULL,
    vcpu                BIGINT NOT NULL,
    memory_mb           BIGINT NOT NULL,
    disk_gb             BIGINT NOT NULL,
    price_hourly_micros BIGINT NOT NULL,
    active              BIGINT NOT NULL DEFAULT 1,
    created_at          BIGINT NOT NULL,
    CHECK (vcpu > 0 AND memory_mb > 0 AND disk_gb > 0 AND price_hourly_micros >= 0)
);
CREATE UNIQUE INDEX plans_slug_key ON plans (slug);

-- Operating-system images. `source` is what the driver needs: a volume name (or absolute path) in
-- the node's libvirt storage pool for vm images, an image reference for container images.
CREATE TABLE images (
    slug        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    source      TEXT NOT NULL,
    -- The image used when a request names none (one per kind).
    is_default  BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);

-- Named presets (reference 002 "VM Templates"): defaults that request fields override.
CREATE TABLE templates (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    plan_id     TEXT NOT NULL REFERENCES plans (id),
    image       TEXT NOT NULL REFERENCES images (slug),
    vcpu        BIGINT,
    memory_mb   BIGINT,
    disk_gb     BIGINT,
    user_data   TEXT,
    ttl_minutes BIGINT,
    -- How many instances were made from it; the list is sorted by this.
    uses        BIGINT NOT NULL DEFAULT 0,
    active      BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX templates_slug_key ON templates (slug);

-- A driver endpoint with capacity. `uri` is a libvirt URI (vm) or a Docker API address (container).
CREATE TABLE nodes (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    region          TEXT NOT NULL,
    uri             TEXT NOT NULL,
    vcpu            BIGINT NOT NULL,
    memory_mb       BIGINT NOT NULL,
    disk_gb         BIGINT NOT NULL,
    -- What placed instances hold; changed only by the conditional updates in compute::nodes so
    -- concurrent creates cannot pass capacity × the configured over-commit ratio.
    used_vcpu       BIGINT NOT NULL DEFAULT 0,
    used_memory_mb  BIGINT NOT NULL DEFAULT 0,
    used_disk_gb    BIGINT NOT NULL DEFAULT 0,
    -- active | draining (no new placements)
    status          TEXT NOT NULL DEFAULT 'active',
    created_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX nodes_name_key ON nodes (name);

CREATE TABLE ssh_keys (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX ssh_keys_user_fingerprint ON ssh_keys (user_id, fingerprint);

CREATE TABLE instances (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES users (id),
    name                TEXT NOT NULL,
    kind                TEXT NOT NULL,
    plan_id             TEXT NOT NULL REFERENCES plans (id),
    image               TEXT NOT NULL,
    template_id         TEXT,
    node_id             TEXT REFERENCES nodes (id),
    region              TEXT NOT NULL,
    vcpu                BIGINT NOT NULL,
    memory_mb           BIGINT NOT NULL,
    disk_gb             BIGINT NOT NULL,
    -- The plan's price when the instance was made: later plan edits do not change running bills.
    price_hourly_micros BIGINT NOT NULL,
    -- provisioning | running | stopping | stopped | rebooting | failed | deleted
    state               TEXT NOT NULL,
    -- The driver action in flight (create, start, stop, restart, restore, delete), NULL when idle.
    transition          TEXT,
    -- Why the instance is failed or was stopped or deleted by Hangar itself.
    reason              TEXT,
    -- JSON: {"labels": {...}, "ssh_key_ids": [...], "security_groups": [...]}
    labels              TEXT NOT NULL DEFAULT '{}',
    ssh_key_ids         TEXT NOT NULL DEFAULT '[]',
    security_groups     TEXT NOT NULL DEFAULT '[]',
    vpc_id              TEXT,
    subnet_id           TEXT,
    user_data           TEXT,
    backups             BIGINT NOT NULL DEFAULT 0,
    ddos_protection     BIGINT NOT NULL DEFAULT 0,
    public_ip           TEXT,
    private_ip          TEXT,
    vnc_port            BIGINT,
    -- Secret part of the instance's NoCloud seed URL (cloud-init fetches its user data there).
    seed_key            TEXT NOT NULL,
    -- The access token that created it (its spend limit was checked at create time).
    token_id            TEXT,
    -- Destroy after this time (template / request ttl_minutes).
    expires_at          BIGINT,
    -- Metering: billed up to this time (NULL while not billable), whole minutes billed so far
    -- (charges are cumulative, so per-minute rounding never drifts from the hourly price), and the
    -- time billing must end at when the instance left the running states.
    metered_until       BIGINT,
    metered_minutes     BIGINT NOT NULL DEFAULT 0,
    meter_stop_at       BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    deleted_at          BIGINT
);
CREATE INDEX instances_user ON instances (user_id, created_at);
CREATE INDEX instances_node ON instances (node_id, state);
-- No index on the meter columns: the tick reads every billable row anyway, and leaving them
-- unindexed lets PostgreSQL update them in place (see db::migrate).
CREATE UNIQUE INDEX instances_ip ON instances (public_ip);

CREATE TABLE snapshots (
    id          TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES instances (id),
    name        TEXT NOT NULL,
    -- creating | ready | failed
    state       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX snapshots_instance_name ON snapshots (instance_id, name);

-- Work that outlives a request (driver actions, mail). Claimed with a conditional update and a
-- lease, so a crashed worker's job is picked up again and two replicas never run one at once.
-- User-visible jobs are reference 004's operations.
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    user_id         TEXT,
    instance_id     TEXT,
    payload         TEXT NOT NULL DEFAULT '{}',
    -- queued | running | done | failed
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    run_at          BIGINT NOT NULL,
    locked_until    BIGINT,
    error           TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs (state, run_at);
CREATE INDEX jobs_instance ON jobs (instance_id);

-- Usage rows written by one metering tick carry the tick's id, so the tick can apply exactly
-- them to the cached balances in the same transaction.
ALTER TABLE ledger ADD COLUMN batch_id TEXT;
CREATE INDEX ledger_batch ON ledger (batch_id, user_id);

-- Running-out and low-balance state per user: when the balance hit zero with machines running
-- (cleared by a top-up), and when the low-balance warning was sent (cleared when the runway is
-- long again), so each crossing mails once.
ALTER TABLE users ADD COLUMN exhausted_at BIGINT;
ALTER TABLE users ADD COLUMN low_balance_notified_at BIGINT;

INSERT INTO counters (name, value) VALUES ('meter', 0);
