-- Who may use the API (see docs/security.md). Roles are stored as a comma-separated list of role names.

-- People who log in with a username and password (Argon2id, PHC string format).
CREATE TABLE auth_users (
    id                     TEXT    PRIMARY KEY,
    username               TEXT    NOT NULL UNIQUE,
    password_hash          TEXT    NOT NULL,
    roles                  TEXT    NOT NULL,
    disabled               INTEGER NOT NULL CHECK (disabled IN (0, 1)),
    bootstrap_password     INTEGER NOT NULL CHECK (bootstrap_password IN (0, 1)),
    created_at_us          INTEGER NOT NULL,
    password_changed_at_us INTEGER NOT NULL
) STRICT;

-- Failed logins by username (whether it exists or not) and source address: lockout and security audits.
CREATE TABLE auth_login_failures (
    username TEXT    NOT NULL,
    source   TEXT    NOT NULL,
    at_us    INTEGER NOT NULL
) STRICT;
CREATE INDEX auth_login_failures_username ON auth_login_failures (username, at_us);
CREATE INDEX auth_login_failures_source ON auth_login_failures (source, at_us);

-- Usernames (existing or not) refused until a time after too many failed logins.
CREATE TABLE auth_lockouts (
    username     TEXT    PRIMARY KEY,
    locked_at_us INTEGER NOT NULL,
    until_us     INTEGER NOT NULL
) STRICT;

-- Machine clients. Only the SHA-256 of the full key is kept; `id` is the key's visible prefix.
CREATE TABLE auth_api_keys (
    id              TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL,
    secret_sha256   BLOB    NOT NULL CHECK (length(secret_sha256) = 32),
    roles           TEXT    NOT NULL,
    created_by      TEXT    NOT NULL,
    created_at_us   INTEGER NOT NULL,
    expires_at_us   INTEGER,
    revoked_at_us   INTEGER,
    last_used_at_us INTEGER
) STRICT;

-- A login session: the family of refresh tokens issued since one login; access tokens name it (`sid`).
CREATE TABLE auth_sessions (
    id             TEXT    PRIMARY KEY,
    user_id        TEXT    NOT NULL REFERENCES auth_users (id),
    source         TEXT    NOT NULL,
    created_at_us  INTEGER NOT NULL,
    expires_at_us  INTEGER NOT NULL,
    revoked_at_us  INTEGER,
    revoked_reason TEXT
) STRICT;
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);

-- Refresh tokens, by SHA-256. Each is used once: using it replaces it with the next.
CREATE TABLE auth_refresh_tokens (
    token_sha256   BLOB    PRIMARY KEY CHECK (length(token_sha256) = 32),
    session_id     TEXT    NOT NULL REFERENCES auth_sessions (id),
    issued_at_us   INTEGER NOT NULL,
    expires_at_us  INTEGER NOT NULL,
    replaced_at_us INTEGER
) STRICT;
CREATE INDEX auth_refresh_tokens_session ON auth_refresh_tokens (session_id);

-- Ed25519 keys that sign access tokens. The private key is encrypted (XChaCha20-Poly1305) with the master key
-- file. The newest key without `retire_after_us` signs; a key verifies until `retire_after_us`.
CREATE TABLE auth_signing_keys (
    kid             TEXT    PRIMARY KEY,
    public_key      BLOB    NOT NULL CHECK (length(public_key) = 32),
    private_key_enc BLOB    NOT NULL,
    created_at_us   INTEGER NOT NULL,
    retire_after_us INTEGER
) STRICT;
