-- A machine shared with a pool: its members see and use it by their role there
-- (`compute::instances::access`). The machine's `user_id` stays the account that created it and
-- pays for it; moving it into or out of a pool never moves its bill. NULL: only its owner.
ALTER TABLE instances ADD COLUMN pool_id TEXT REFERENCES pools (id) ON DELETE SET NULL;
CREATE INDEX instances_pool ON instances (pool_id) WHERE pool_id IS NOT NULL;
