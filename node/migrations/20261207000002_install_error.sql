-- Why a container's install failed (the engine's error, or the script's exit code and the last of
-- its output), so the panel can tell the person instead of showing a bare `failed`.
ALTER TABLE containers ADD COLUMN install_error TEXT;
