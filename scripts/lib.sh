# Shared by scripts/setup, scripts/run and scripts/test. Sourced, not executed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# Build output lives outside the clone so fresh clones (CI) reuse earlier compilation.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hangar/target}"
mkdir -p "$CARGO_TARGET_DIR"
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
# Incremental-compilation caches grow with every checkout path that builds here (CI clones, worktrees)
# and are the first thing to go when the disk runs low; dropping them costs one slower build of the
# workspace's own crates, never a dependency rebuild.
avail_kb="$(df --output=avail -k "$CARGO_TARGET_DIR" | tail -1 | tr -d ' ')"
if [ "${avail_kb:-0}" -lt $((15 * 1024 * 1024)) ] && [ -d "$CARGO_TARGET_DIR/debug/incremental" ]; then
  log "less than 15 GB free: removing $CARGO_TARGET_DIR/debug/incremental"
  rm -rf "$CARGO_TARGET_DIR/debug/incremental"
fi
# Test and example binaries of earlier versions (each up to 500 MB, one per build of a test
# target) pile up in a reused target dir; those not rebuilt for a day are never run again.
# When the disk runs low, those of any earlier build go too (older than an hour: not the ones a
# build running now has just linked); a test binary costs only its link to make again.
if [ -d "$CARGO_TARGET_DIR/debug/deps" ]; then
  find "$CARGO_TARGET_DIR/debug/deps" "$CARGO_TARGET_DIR/debug/examples" -maxdepth 1 -type f \
    -executable -size +50M -mtime +0 -delete 2>/dev/null || true
  if [ "${avail_kb:-0}" -lt $((25 * 1024 * 1024)) ]; then
    log "less than 25 GB free: removing test binaries not linked in the last hour"
    find "$CARGO_TARGET_DIR/debug/deps" "$CARGO_TARGET_DIR/debug/examples" -maxdepth 1 -type f \
      -executable -size +50M -mmin +60 -delete 2>/dev/null || true
  fi
fi
