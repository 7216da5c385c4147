-- Public IPv4 addresses: operators add ranges per region; a VM placed in the region takes one
-- in its create transaction and gives it back when it is deleted or fails.

CREATE TABLE ip_pools (
    id              TEXT PRIMARY KEY,
    region          TEXT NOT NULL,
    first_address   TEXT NOT NULL,
    last_address    TEXT NOT NULL,
    -- What guests use around the address (shown to operators; the node's network serves it).
    prefix_len      BIGINT NOT NULL,
    gateway         TEXT,
    created_at      BIGINT NOT NULL
);

CREATE TABLE ip_addresses (
    address         TEXT PRIMARY KEY,
    pool_id         TEXT NOT NULL REFERENCES ip_pools (id),
    region          TEXT NOT NULL,
    -- The address as a number: ranges are checked for overlap by it.
    ordinal         BIGINT NOT NULL,
    instance_id     TEXT,
    allocated_at    BIGINT,
    -- When it was last given back (0: never held): the longest-free address is handed out
    -- first, so an address does not move to a new customer while caches and reputations still
    -- know the old one.
    released_at     BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX ip_addresses_instance_key ON ip_addresses (instance_id) WHERE instance_id IS NOT NULL;
CREATE INDEX ip_addresses_free_idx ON ip_addresses (region, released_at, ordinal) WHERE instance_id IS NULL;
CREATE INDEX ip_addresses_ordinal_idx ON ip_addresses (ordinal);
