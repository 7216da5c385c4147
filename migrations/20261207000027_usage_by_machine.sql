-- What each machine cost, per UTC hour, for statements a person can read ("web-1, 60 min,
-- $0.01") instead of one "Compute usage" line per minute. Written by the meter in the same
-- transaction as the ledger row it itemizes (`compute::meter`); the ledger stays the record of
-- money, this table is its breakdown.
CREATE TABLE usage_hours (
    id              TEXT PRIMARY KEY,
    instance_id     TEXT NOT NULL,
    -- The hour (ms since the epoch, a multiple of 3 600 000) of the ticks that charged it.
    hour_start      BIGINT NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id),
    -- The machine's name when it was charged: statements keep it after a rename or delete.
    instance_name   TEXT NOT NULL,
    amount_micros   BIGINT NOT NULL,
    minutes         BIGINT NOT NULL,
    -- The last charge in the hour: when the statement line is dated.
    last_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX usage_hours_instance_hour ON usage_hours (instance_id, hour_start);
CREATE INDEX usage_hours_user_hour ON usage_hours (user_id, hour_start);

-- 1 when `usage_hours` itemizes this usage row in full (every row the meter writes while the
-- balance covers the minute); 0 for usage capped at a balance that ran out, and for usage
-- charged before itemizing existed, which statements show as they are.
ALTER TABLE ledger ADD COLUMN itemized BIGINT NOT NULL DEFAULT 0;
