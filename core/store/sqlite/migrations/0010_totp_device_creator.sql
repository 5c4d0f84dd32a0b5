-- The session that created a TOTP device: only it may read the secret of the device while
-- the device is unverified. Empty for devices created before this column existed.
ALTER TABLE totp_devices ADD COLUMN created_by_session TEXT NOT NULL DEFAULT '';
