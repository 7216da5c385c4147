-- A node the reconciler cannot reach: since when (epoch ms), NULL while it answers. Copied onto
-- its instances so every view of a machine (API, portal list, live stream) can say so without a
-- join; both are set and cleared together by the reconciler. New machines are not placed on it.
ALTER TABLE nodes ADD COLUMN unreachable_since BIGINT;
ALTER TABLE instances ADD COLUMN unreachable_since BIGINT;
