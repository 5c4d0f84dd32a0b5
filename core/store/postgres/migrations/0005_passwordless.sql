-- Passwordless devices (one sign-in attempt each) keyed by preAuthSessionId, the SHA-256 of
-- the device id only the client holds, and their codes: hashes only.
CREATE TABLE passwordless_devices (
    tenant_id           TEXT    NOT NULL,
    pre_auth_session_id TEXT    NOT NULL,
    email               TEXT,
    phone_number        TEXT,
    flow_type           TEXT    NOT NULL,
    failed_attempts     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, pre_auth_session_id)
);

CREATE TABLE passwordless_codes (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT        NOT NULL,
    pre_auth_session_id  TEXT        NOT NULL,
    user_input_code_hash TEXT,
    link_code_hash       TEXT,
    created_at           TIMESTAMPTZ NOT NULL,
    FOREIGN KEY (tenant_id, pre_auth_session_id)
        REFERENCES passwordless_devices (tenant_id, pre_auth_session_id) ON DELETE CASCADE
);
CREATE INDEX passwordless_codes_device ON passwordless_codes (tenant_id, pre_auth_session_id);
CREATE INDEX passwordless_codes_created ON passwordless_codes (created_at);

-- Single-use email verification and password reset tokens: SHA-256 only.
CREATE TABLE account_tokens (
    hash           TEXT PRIMARY KEY,
    kind           TEXT        NOT NULL,
    tenant_id      TEXT        NOT NULL,
    recipe_user_id TEXT        NOT NULL,
    email          TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX account_tokens_user ON account_tokens (recipe_user_id, kind);
CREATE INDEX account_tokens_expires ON account_tokens (expires_at);
