-- Sign-out everywhere and password changes: each bumps the account's credentials version, which
-- every browser session and JWT carries from its sign-in; an older one no longer works.
ALTER TABLE users ADD COLUMN credentials_version BIGINT NOT NULL DEFAULT 0;
