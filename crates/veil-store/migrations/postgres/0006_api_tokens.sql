-- API tokens for integrations: a name and a JSON array of scopes. Session tokens (from login) have neither and
-- carry the user's full role.
ALTER TABLE auth_token ADD COLUMN name TEXT;
ALTER TABLE auth_token ADD COLUMN scopes TEXT;
