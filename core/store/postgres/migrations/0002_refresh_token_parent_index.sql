-- Rotation deletes the unused siblings of a token (same parent); without this index that
-- scans the session's whole chain, which grows by one token per refresh.
CREATE INDEX refresh_tokens_parent ON refresh_tokens (parent_hash, session_handle);
