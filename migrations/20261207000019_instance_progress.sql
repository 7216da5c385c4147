-- What an action in flight is doing now, in a person's words ("Booting: waiting for the guest to
-- answer"), so a machine that is not usable yet says why instead of only "creating".
ALTER TABLE instances ADD COLUMN progress TEXT;
