-- Why a snapshot failed, for its owner (the driver's error); NULL otherwise.
ALTER TABLE snapshots ADD COLUMN reason TEXT;
