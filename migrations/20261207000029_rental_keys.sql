-- The renter's SSH keys a rental's server is set up with, chosen when renting (all of the
-- renter's keys when none are named). Pool members' keys come on top by the pool's
-- `member_keys` setting (`market::rentals::authorized_keys`). A deleted key drops off.
CREATE TABLE rental_keys (
    rental_id   TEXT NOT NULL REFERENCES rentals (id) ON DELETE CASCADE,
    key_id      TEXT NOT NULL REFERENCES ssh_keys (id) ON DELETE CASCADE,
    PRIMARY KEY (rental_id, key_id)
);
