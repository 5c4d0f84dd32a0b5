-- The JWS algorithm a signing key signs with: RS256, ES256 or EdDSA. Keys made before this
-- column existed are RSA keys.
ALTER TABLE signing_keys ADD COLUMN algorithm TEXT NOT NULL DEFAULT 'RS256';
