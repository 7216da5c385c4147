-- Container nodes may be node daemons (hangar-node, reference 003) as well as Docker APIs: such a
-- node's uri is `hangar-node+http://host:8070` and `secret` holds the token it answers to (never
-- shown by any API).
ALTER TABLE nodes ADD COLUMN secret TEXT;

-- App templates: a container image may carry how a node daemon installs and runs it, as JSON
-- {"startup_command", "install_script", "start_pattern", "environment": {..}, "ports": n}.
ALTER TABLE images ADD COLUMN app TEXT;
