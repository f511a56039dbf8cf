-- The registry entity an account or API key is bound to (docs/entities.md): both columns set, or neither.
ALTER TABLE auth_users ADD COLUMN entity_type TEXT;
ALTER TABLE auth_users ADD COLUMN entity_id TEXT;
ALTER TABLE auth_api_keys ADD COLUMN entity_type TEXT;
ALTER TABLE auth_api_keys ADD COLUMN entity_id TEXT;
