-- Passkeys: one webauthn login method per email and tenant, its credentials, and the options
-- of ceremonies in progress (used once, short-lived).
CREATE UNIQUE INDEX login_methods_webauthn ON login_methods (tenant_id, email)
    WHERE recipe_id = 'webauthn';

CREATE TABLE webauthn_credentials (
    tenant_id         TEXT    NOT NULL,
    id                TEXT    NOT NULL,
    recipe_user_id    TEXT    NOT NULL REFERENCES login_methods (recipe_user_id) ON DELETE CASCADE,
    rp_id             TEXT    NOT NULL,
    public_key        BLOB    NOT NULL,
    attestation_type  TEXT    NOT NULL,
    aaguid            BLOB,
    sign_count        INTEGER NOT NULL,
    transports        TEXT    NOT NULL,
    user_verified     INTEGER NOT NULL,
    backup_eligible   INTEGER NOT NULL,
    backup_state      INTEGER NOT NULL,
    name              TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    last_used_at      INTEGER,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (recipe_user_id);

CREATE TABLE webauthn_options (
    tenant_id         TEXT    NOT NULL,
    id                TEXT    NOT NULL,
    kind              TEXT    NOT NULL,
    challenge         TEXT    NOT NULL,
    email             TEXT    NOT NULL,
    user_handle       TEXT    NOT NULL,
    recipe_user_id    TEXT    NOT NULL,
    rp_id             TEXT    NOT NULL,
    user_verification TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX webauthn_options_expires ON webauthn_options (expires_at);
