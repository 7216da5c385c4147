-- Marketplace inventory, rentals, pools (reference 001).

CREATE TABLE marketplace_servers (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    country             TEXT NOT NULL,
    region              TEXT NOT NULL,
    city                TEXT NOT NULL,
    datacenter          TEXT NOT NULL,
    model               TEXT NOT NULL,
    is_vm               BIGINT NOT NULL DEFAULT 0,
    -- compute | memory | storage | general | gpu
    category            TEXT NOT NULL,
    featured            BIGINT NOT NULL DEFAULT 0,
    popularity_rank     BIGINT NOT NULL,
    setup_time_minutes  BIGINT NOT NULL,
    cpu_model           TEXT NOT NULL,
    cpu_cores           BIGINT NOT NULL,
    cpu_threads         BIGINT NOT NULL,
    cpu_score           BIGINT NOT NULL,
    -- passmark | geekbench_single | geekbench_multi
    cpu_score_type      TEXT NOT NULL,
    ram_gb              BIGINT NOT NULL,
    ram_type            TEXT NOT NULL,
    ram_speed_mhz       BIGINT NOT NULL,
    -- JSON array of {count, capacity_gb, type, interface}
    disks               TEXT NOT NULL,
    total_storage_gb    BIGINT NOT NULL,
    disk_summary        TEXT NOT NULL,
    -- Every disk type of the server between commas (",NVMe,HDD,") for the disk_types filter.
    disk_types          TEXT NOT NULL,
    bandwidth_mbps      BIGINT NOT NULL,
    traffic_tb          BIGINT,
    traffic_unlimited   BIGINT NOT NULL DEFAULT 0,
    ipv4_count          BIGINT NOT NULL,
    ipv6_enabled        BIGINT NOT NULL DEFAULT 1,
    -- Lowest price per day over the server's durations (µUSD), kept with the prices; what
    -- max_price_per_day filters and price sorts use.
    min_price_per_day   BIGINT NOT NULL,
    -- active | retired
    status              TEXT NOT NULL DEFAULT 'active',
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX marketplace_servers_browse ON marketplace_servers (status, featured, popularity_rank);
CREATE INDEX marketplace_servers_price ON marketplace_servers (status, min_price_per_day);
CREATE INDEX marketplace_servers_country ON marketplace_servers (country, region);

-- Price of renting a server for exactly `days` days (total, µUSD).
CREATE TABLE marketplace_prices (
    server_id   TEXT NOT NULL REFERENCES marketplace_servers (id) ON DELETE CASCADE,
    days        BIGINT NOT NULL,
    price       BIGINT NOT NULL,
    PRIMARY KEY (server_id, days),
    CHECK (days >= 1 AND price >= 0)
);
CREATE INDEX marketplace_prices_days ON marketplace_prices (days, server_id);

CREATE TABLE pools (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    is_default  BIGINT NOT NULL DEFAULT 0,
    settings    TEXT NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX pools_owner ON pools (owner_id);
CREATE UNIQUE INDEX pools_one_default ON pools (owner_id) WHERE is_default = 1;

-- Everyone with a role in a pool, the owner included (role 'owner'). An invitation is a row with
-- is_authorized = 0 until the invitee accepts.
CREATE TABLE pool_members (
    id              TEXT PRIMARY KEY,
    pool_id         TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- owner | admin | user
    role            TEXT NOT NULL,
    is_authorized   BIGINT NOT NULL DEFAULT 0,
    invited_by      TEXT REFERENCES users (id),
    invited_at      BIGINT NOT NULL,
    joined_at       BIGINT
);
CREATE UNIQUE INDEX pool_members_once ON pool_members (pool_id, user_id);
CREATE INDEX pool_members_user ON pool_members (user_id, is_authorized);

CREATE TABLE rentals (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id),
    server_id       TEXT NOT NULL REFERENCES marketplace_servers (id),
    pool_id         TEXT NOT NULL REFERENCES pools (id),
    rental_start    BIGINT NOT NULL,
    rental_end      BIGINT NOT NULL,
    hold_days       BIGINT NOT NULL DEFAULT 0,
    -- rental_end + hold_days: when the server goes back to the marketplace.
    expires_at      BIGINT NOT NULL,
    -- active | expired
    status          TEXT NOT NULL,
    amount          BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
-- At most one active rental per server: the loser of a race gets a unique violation.
CREATE UNIQUE INDEX rentals_one_active_per_server ON rentals (server_id) WHERE status = 'active';
CREATE INDEX rentals_user ON rentals (user_id, created_at);
CREATE INDEX rentals_pool ON rentals (pool_id, status);
CREATE INDEX rentals_expiry ON rentals (status, expires_at);
