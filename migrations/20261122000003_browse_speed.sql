-- Browse speed: availability lives on the server row (no per-row subquery), and a generation
-- counter that every change affecting browse results bumps in its own transaction, so cached
-- browse results are keyed by it and never served stale.
ALTER TABLE marketplace_servers ADD COLUMN rented_until BIGINT;
UPDATE marketplace_servers SET rented_until =
    (SELECT MAX(r.expires_at) FROM rentals r WHERE r.server_id = marketplace_servers.id AND r.status = 'active');
CREATE INDEX marketplace_servers_popular ON marketplace_servers (status, featured, popularity_rank, id);

CREATE TABLE counters (
    name    TEXT PRIMARY KEY,
    value   BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('marketplace', 0);
