-- A password reset link waiting to be followed (`accounts::recovery`): one per account, a new
-- request replaces the last. Only the token's SHA-256 is kept; `sent_by` is the operator who
-- sent it, if one did.
CREATE TABLE password_resets (
    user_id     TEXT PRIMARY KEY REFERENCES users (id),
    token_hash  TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    sent_by     TEXT
);
CREATE UNIQUE INDEX password_resets_token ON password_resets (token_hash);
