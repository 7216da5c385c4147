-- Stripe Checkout top-ups: one row per checkout session, credited at most once.
CREATE TABLE topups (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id),
    session_id      TEXT NOT NULL,
    -- What the customer asked for (µUSD); the credit uses the session's own amount.
    requested       BIGINT NOT NULL,
    -- pending | paid
    status          TEXT NOT NULL,
    credited        BIGINT,
    created_at      BIGINT NOT NULL,
    completed_at    BIGINT
);
CREATE UNIQUE INDEX topups_session ON topups (session_id);
CREATE INDEX topups_user ON topups (user_id, created_at);
