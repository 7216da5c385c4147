# Shared by scripts/setup, scripts/run and scripts/test. Sourced, not executed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# Build output lives outside the clone so fresh clones (CI) reuse earlier compilation.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hangar/target}"
mkdir -p "$CARGO_TARGET_DIR"
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
