-- User administration: a user an admin disabled (cannot sign in, sessions cannot refresh),
-- and the admin API's named keys, stored as SHA-256 hashes.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;

CREATE TABLE admin_keys (
    name       TEXT PRIMARY KEY,
    hash       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
