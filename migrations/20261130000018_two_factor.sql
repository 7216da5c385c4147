-- Optional two-factor sign-in (TOTP, RFC 6238). `totp_secret` is the base32 key the user's
-- authenticator app holds; `totp_enabled_at` is set once a code from it was confirmed (0: off,
-- with any secret only pending). `totp_last_step` is the last time step whose code was
-- accepted, so an overheard code cannot be replayed within its 30-second window.
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_enabled_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0;

-- One-time recovery codes for a lost authenticator, stored as SHA-256 hashes.
CREATE TABLE totp_recovery_codes (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, code_hash)
);
