-- What a container machine has written (its writable layer), as its node last reported it;
-- NULL where the node cannot tell (VMs: the disk image is the bound). See `compute::reconcile`.
ALTER TABLE instances ADD COLUMN disk_used_bytes BIGINT;
