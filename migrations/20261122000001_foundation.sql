-- Hangar's foundation schema. One history for SQLite and PostgreSQL: only portable types
-- (TEXT, BIGINT, DOUBLE PRECISION), ids are 24-hex text, times are unix milliseconds (BIGINT),
-- money is integer micro-USD (1 USD = 1,000,000), flags are 0/1 BIGINT.

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    email           TEXT NOT NULL,
    username        TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    is_admin        BIGINT NOT NULL DEFAULT 0,
    -- Cache of SUM(ledger.amount_micros) for this user, updated in the same transaction as
    -- every ledger insert; `hangar admin check-ledger` and the tests compare the two.
    balance_micros  BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    CHECK (balance_micros >= 0)
);
-- Emails are stored lower-cased; usernames keep their case but are unique regardless of it.
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE UNIQUE INDEX users_username_key ON users (LOWER(username));

-- Browser sessions (tower-sessions records, JSON), shared by every replica.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    data        TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Long-lived API tokens (`vtk_...`). Only a SHA-256 of the value is kept.
CREATE TABLE access_tokens (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    token_hash          TEXT NOT NULL,
    -- Last characters of the value, shown in lists so people can tell tokens apart.
    token_hint          TEXT NOT NULL,
    spend_limit_micros  BIGINT,
    spent_micros        BIGINT NOT NULL DEFAULT 0,
    created_at          BIGINT NOT NULL,
    last_used_at        BIGINT,
    revoked_at          BIGINT
);
CREATE UNIQUE INDEX access_tokens_hash_key ON access_tokens (token_hash);
CREATE INDEX access_tokens_user ON access_tokens (user_id);

-- Immutable money movements. The balance of a user is the sum of their rows.
CREATE TABLE ledger (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id),
    amount_micros   BIGINT NOT NULL,
    -- topup | rental | extension | usage | refund | credit
    kind            TEXT NOT NULL,
    description     TEXT NOT NULL,
    -- What caused the movement (a rental id, a Stripe session id, an operator's user id, ...).
    reference       TEXT,
    -- Set when the movement is unique per cause (e.g. one credit per Stripe session).
    idempotency_key TEXT,
    token_id        TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX ledger_user_created ON ledger (user_id, created_at);
CREATE UNIQUE INDEX ledger_idempotency_key ON ledger (idempotency_key);

CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    actor_id    TEXT,
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT,
    details     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX audit_log_created ON audit_log (created_at);

-- Server-generated secrets shared by replicas (e.g. the JWT signing key when none is configured).
CREATE TABLE server_secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
