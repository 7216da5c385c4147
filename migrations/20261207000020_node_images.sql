-- Which catalog images each node was found to hold (`compute::survey`): machines are offered and
-- placed only where their image is, instead of failing on the node after the customer paid.
CREATE TABLE node_images (
    node_id     TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    image_slug  TEXT NOT NULL,
    checked_at  BIGINT NOT NULL,
    PRIMARY KEY (node_id, image_slug)
);
CREATE INDEX node_images_by_image ON node_images (image_slug);
