-- TOTP devices: the secret and settings a device was created with, and the last accepted
-- time step (replay protection, updated with a compare-and-set).
CREATE TABLE totp_devices (
    user_id        TEXT        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name           TEXT        NOT NULL,
    secret         TEXT        NOT NULL,
    digits         INTEGER     NOT NULL,
    period         INTEGER     NOT NULL,
    skew           INTEGER     NOT NULL,
    verified       BOOLEAN     NOT NULL DEFAULT FALSE,
    last_used_step BIGINT      NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, name)
);

-- Recovery codes: hashes only; used_at is set once, with a compare-and-set.
CREATE TABLE recovery_codes (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    TEXT        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- The failed-attempt limit TOTP and recovery codes share, one row per user.
CREATE TABLE mfa_attempt_limits (
    user_id      TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    failures     INTEGER NOT NULL,
    locked_until TIMESTAMPTZ
);

-- When a tenant's MFA policy first applied to a user: the start of their enrolment grace.
CREATE TABLE mfa_policy_starts (
    user_id    TEXT        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id  TEXT        NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, tenant_id)
);
