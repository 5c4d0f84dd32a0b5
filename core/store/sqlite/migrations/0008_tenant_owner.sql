-- Who manages each tenant (an AuthTenant's namespace/name/uid); empty when nobody claimed it.
-- Existing tenants start unclaimed: the first owner to put them claims them.
ALTER TABLE tenants ADD COLUMN owner TEXT NOT NULL DEFAULT '';
