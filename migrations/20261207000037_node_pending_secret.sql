-- A node daemon token being rotated in: stored before the daemon is asked to take it, so an
-- answer lost on the way (or a failed write after it) does not leave the panel without the token
-- the daemon now wants: the next rotation or reconciler pass tries it and adopts it.
ALTER TABLE nodes ADD COLUMN pending_secret TEXT;
