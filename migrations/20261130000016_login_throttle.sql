-- Per-account sign-in throttling (on top of the per-IP limit): failed password attempts in a
-- row, and until when the account refuses sign-ins after too many of them.
ALTER TABLE users ADD COLUMN failed_logins BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN login_blocked_until BIGINT NOT NULL DEFAULT 0;
