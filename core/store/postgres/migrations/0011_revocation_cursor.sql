-- The revocation cursor of the enforcement feed: every revocation takes the next number of
-- its tenant's counter, and the sessions it revokes carry it, so a sidecar asks only for what
-- was revoked after the number it last saw. Sessions revoked before this migration get 1.
CREATE TABLE revocation_counters (
    tenant_id TEXT PRIMARY KEY,
    seq       BIGINT NOT NULL
);
ALTER TABLE sessions ADD COLUMN revoke_seq BIGINT;
UPDATE sessions SET revoke_seq = 1 WHERE revoked_at IS NOT NULL;
INSERT INTO revocation_counters (tenant_id, seq)
    SELECT DISTINCT tenant_id, 1 FROM sessions WHERE revoked_at IS NOT NULL;
CREATE INDEX sessions_tenant_revoke_seq ON sessions (tenant_id, revoke_seq) WHERE revoke_seq IS NOT NULL;
