-- Single-use tickets that open a machine's console or screen over a WebSocket (Proxmox's
-- vncproxy/vncwebsocket flow). Only the ticket's SHA-256 is kept; a ticket lives for seconds, is
-- bound to its user, machine and kind, and is spent by the first upgrade that presents it.
-- kind: console | screen. token_id: the access token it was issued with (revoking it ends access).
CREATE TABLE console_tickets (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    instance_id TEXT NOT NULL REFERENCES instances (id),
    kind        TEXT NOT NULL,
    token_id    TEXT,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX console_tickets_expiry ON console_tickets (expires_at);
