-- The node daemon's state on its host: tokens it issued, volumes, the port pool, containers.

-- Tokens from POST /auth/tokens, stored as SHA-256 hashes (the token itself is shown once).
-- `container` scopes a token to one container's WebSocket (the panel's console tickets).
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    remove_on_use INTEGER NOT NULL DEFAULT 0,
    container TEXT,
    created_at INTEGER NOT NULL
);

CREATE TABLE volumes (
    id TEXT PRIMARY KEY,
    -- Disk limit in bytes; NULL for none.
    size_limit INTEGER,
    created_at INTEGER NOT NULL
);

-- One row per (ip, port): the reference addresses a pool entry by both and nothing else.
CREATE TABLE ports (
    ip TEXT NOT NULL,
    port INTEGER NOT NULL,
    protocol TEXT NOT NULL,
    in_use INTEGER NOT NULL DEFAULT 0,
    container TEXT,
    PRIMARY KEY (ip, port)
);

CREATE TABLE containers (
    internal_id TEXT PRIMARY KEY,
    container_id TEXT,
    volume_id TEXT NOT NULL REFERENCES volumes(id),
    image TEXT NOT NULL,
    startup_command TEXT NOT NULL,
    start_pattern TEXT,
    install_script TEXT,
    install_state TEXT NOT NULL,
    ports TEXT NOT NULL,
    limits TEXT NOT NULL,
    environment TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
