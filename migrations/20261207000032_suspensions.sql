-- An operator's suspension of an account (`accounts::customers`): while `suspended_at` is set the
-- account cannot sign in or use its API tokens, and its machines were stopped. The reason is
-- shown to the customer.
ALTER TABLE users ADD COLUMN suspended_at BIGINT;
ALTER TABLE users ADD COLUMN suspended_reason TEXT;
