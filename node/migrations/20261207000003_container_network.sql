-- The isolation group a container's network belongs to (Hangar passes the owner's account);
-- NULL: the container's own. See `containers::network_of`.
ALTER TABLE containers ADD COLUMN network TEXT;
