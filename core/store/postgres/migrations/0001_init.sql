-- Tenants: the configuration the admin API accepted, as JSON, with its hash and version.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    config      JSON        NOT NULL,
    config_hash TEXT        NOT NULL,
    version     BIGINT      NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- Users in the account-linking model: a primary user with login methods.
CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    time_joined TIMESTAMPTZ NOT NULL,
    is_primary  BOOLEAN     NOT NULL DEFAULT TRUE
);

CREATE TABLE login_methods (
    recipe_user_id      TEXT PRIMARY KEY,
    user_id             TEXT        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    recipe_id           TEXT        NOT NULL,
    tenant_id           TEXT        NOT NULL,
    email               TEXT,
    phone_number        TEXT,
    third_party_id      TEXT,
    third_party_user_id TEXT,
    password_hash       TEXT,
    verified            BOOLEAN     NOT NULL DEFAULT FALSE,
    time_joined         TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_methods_user ON login_methods (user_id);
CREATE INDEX login_methods_tenant_email ON login_methods (tenant_id, email);
CREATE INDEX login_methods_tenant_phone ON login_methods (tenant_id, phone_number);
CREATE UNIQUE INDEX login_methods_emailpassword ON login_methods (tenant_id, email)
    WHERE recipe_id = 'emailpassword';
CREATE UNIQUE INDEX login_methods_thirdparty ON login_methods (tenant_id, third_party_id, third_party_user_id)
    WHERE recipe_id = 'thirdparty';
CREATE UNIQUE INDEX login_methods_passwordless_email ON login_methods (tenant_id, email)
    WHERE recipe_id = 'passwordless' AND email IS NOT NULL;
CREATE UNIQUE INDEX login_methods_passwordless_phone ON login_methods (tenant_id, phone_number)
    WHERE recipe_id = 'passwordless' AND phone_number IS NOT NULL;

-- User metadata: one JSON object per user (per-user required factors live here).
CREATE TABLE user_metadata (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    metadata   JSON        NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Sessions and the chain of refresh tokens (hashes only) used for theft detection.
CREATE TABLE sessions (
    handle               TEXT PRIMARY KEY,
    user_id              TEXT        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    recipe_user_id       TEXT        NOT NULL,
    tenant_id            TEXT        NOT NULL,
    claims               JSON        NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    expires_at           TIMESTAMPTZ NOT NULL,
    revoked_at           TIMESTAMPTZ,
    current_refresh_hash TEXT        NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_recipe_user ON sessions (recipe_user_id);
CREATE INDEX sessions_tenant_id ON sessions (tenant_id);
CREATE INDEX sessions_revoked ON sessions (tenant_id, revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX sessions_revoked_at ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE refresh_tokens (
    hash           TEXT PRIMARY KEY,
    session_handle TEXT        NOT NULL REFERENCES sessions (handle) ON DELETE CASCADE,
    parent_hash    TEXT,
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_handle);

-- Access-token signing keys, shared by every replica.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    private_der BYTEA       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX signing_keys_created ON signing_keys (created_at);
