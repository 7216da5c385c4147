-- A requested change of sign-in email, waiting for the link sent to the new address
-- (`accounts::account`). One per account: a new request replaces the last. Only the token's
-- SHA-256 is kept.
CREATE TABLE email_changes (
    user_id     TEXT PRIMARY KEY REFERENCES users (id),
    new_email   TEXT NOT NULL,
    token_hash  TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX email_changes_token ON email_changes (token_hash);

-- When the owner deleted the account: its email and username were released, its credentials
-- ended; the row stays for the ledger and the audit log, which refer to it.
ALTER TABLE users ADD COLUMN deleted_at BIGINT;
