-- Browse without a cache: every marketplace row carries the generation of the change that last
-- touched it, so each replica's in-memory browse index (domain market::index) catches up by
-- reading only the rows changed since the generation it has.
ALTER TABLE marketplace_servers ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
CREATE INDEX marketplace_servers_generation ON marketplace_servers (generation);

-- Extending a rental did not move its server's rented_until, so the server looked free again
-- when the rental's first term ran out: set it from the active rentals once more.
UPDATE marketplace_servers SET rented_until =
    (SELECT MAX(r.expires_at) FROM rentals r WHERE r.server_id = marketplace_servers.id AND r.status = 'active')
WHERE EXISTS (SELECT 1 FROM rentals r WHERE r.server_id = marketplace_servers.id AND r.status = 'active');
