-- A session's refresh lifetime, so each rotation can move its expiry to now + lifetime (a
-- session ends after that long without a refresh, as in SuperTokens). 0 keeps the expiry.
ALTER TABLE sessions ADD COLUMN refresh_lifetime_ms BIGINT NOT NULL DEFAULT 0;
