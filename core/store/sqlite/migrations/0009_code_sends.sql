-- One-time codes and links sent, per tenant and budget key (a contact or a user), for the
-- sliding-window send limits.
CREATE TABLE code_sends (
    tenant_id TEXT    NOT NULL,
    send_key  TEXT    NOT NULL,
    sent_at   INTEGER NOT NULL -- unix milliseconds
);
CREATE INDEX code_sends_by_key ON code_sends (tenant_id, send_key, sent_at);
CREATE INDEX code_sends_by_time ON code_sends (sent_at);
