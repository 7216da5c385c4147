-- What each access token may do (`model::accounts::Scope`), space-separated. Tokens made before
-- scopes existed keep every scope they had in effect.
ALTER TABLE access_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT 'read machines inside spend';
