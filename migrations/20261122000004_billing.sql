-- Extra addresses that receive low-balance alerts (reference 002 "Billing").
CREATE TABLE notify_emails (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX notify_emails_once ON notify_emails (user_id, email);
