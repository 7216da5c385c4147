-- A stopped machine gives its node's vCPU and memory back and keeps paying for what it still
-- holds, its disk and its public IPv4 address (see `compute::meter` and `compute::nodes`).
--   holds_compute:       1 while the machine's vCPU and memory count in its node's `used_*`.
--   held_hourly_micros:  what it pays per hour while stopped (fixed at create, like its price).
--   metered_rate_micros: the rate of the current billing segment (its price while it runs, the
--                        held rate while it is stopped); `metered_minutes` counts that segment's.
--   billed_micros:       what all its billed minutes cost, every segment (the meter's invariant:
--                        a user's usage in the ledger is the sum of it while the balance lasts).
-- Machines stopped before this migration keep holding their share (their nodes count it).
ALTER TABLE instances ADD COLUMN holds_compute BIGINT NOT NULL DEFAULT 1;
ALTER TABLE instances ADD COLUMN held_hourly_micros BIGINT NOT NULL DEFAULT 0;
ALTER TABLE instances ADD COLUMN metered_rate_micros BIGINT NOT NULL DEFAULT 0;
UPDATE instances SET metered_rate_micros = price_hourly_micros;
ALTER TABLE instances ADD COLUMN billed_micros BIGINT NOT NULL DEFAULT 0;
UPDATE instances SET billed_micros = (price_hourly_micros * metered_minutes) / 60;
