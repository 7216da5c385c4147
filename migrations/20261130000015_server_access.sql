-- How a renter reaches a rented server: the address the operator publishes for it, with the SSH
-- port and user. Shown only to those who can see a rental of the server, never on the
-- marketplace. Access is by the renter's SSH keys, so no password is ever stored.
ALTER TABLE marketplace_servers ADD COLUMN access_address TEXT;
ALTER TABLE marketplace_servers ADD COLUMN access_port BIGINT NOT NULL DEFAULT 22;
ALTER TABLE marketplace_servers ADD COLUMN access_user TEXT NOT NULL DEFAULT 'root';
