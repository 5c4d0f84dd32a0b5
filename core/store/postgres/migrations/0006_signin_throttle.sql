-- Consecutive failed password sign-ins per account, and the lock they led to.
CREATE TABLE signin_failures (
    tenant_id    TEXT    NOT NULL,
    account      TEXT    NOT NULL,
    failures     INTEGER NOT NULL,
    locked_until BIGINT  NOT NULL, -- unix milliseconds; 0 when not locked
    PRIMARY KEY (tenant_id, account)
);
