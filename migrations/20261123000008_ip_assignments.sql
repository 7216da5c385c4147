-- Who held which public address when: abuse reports name an address and a time, and the
-- operator must be able to answer them after the machine is long gone.
CREATE TABLE ip_assignments (
    id              TEXT PRIMARY KEY,
    address         TEXT NOT NULL,
    instance_id     TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    assigned_at     BIGINT NOT NULL,
    released_at     BIGINT
);
CREATE INDEX ip_assignments_address_idx ON ip_assignments (address, assigned_at);
CREATE INDEX ip_assignments_open_idx ON ip_assignments (instance_id) WHERE released_at IS NULL;
