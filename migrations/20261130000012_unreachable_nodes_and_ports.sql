-- A node the reconciler cannot reach: since when (epoch ms), NULL while it answers. Copied onto
-- its instances so every view of a machine (API, portal list, live stream) can say so without a
-- join; both are set and cleared together by the reconciler. New machines are not placed on it.
ALTER TABLE nodes ADD COLUMN unreachable_since BIGINT;
ALTER TABLE instances ADD COLUMN unreachable_since BIGINT;

-- The host ports a machine on a node daemon got from the pool at create, as a JSON array of
-- "ip:port/protocol" (what its players connect to); empty for every other machine.
ALTER TABLE instances ADD COLUMN ports TEXT NOT NULL DEFAULT '[]';
