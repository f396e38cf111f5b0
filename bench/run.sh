#!/usr/bin/env bash
# nora against CNCF distribution (Debian's docker-registry) on this machine,
# in alternating rounds. Usage: bench/run.sh [ROUNDS]   (default 3)
# Knobs (env): BENCH_BIG=256 (MiB), BENCH_MULTI=20 (4 MiB layers),
#   BENCH_WRK_SECONDS=10, BENCH_HUGE=1024 (MiB, the single-blob push),
#   BENCH_PAIRS=6 (pushes and pulls in turn, per server and image),
#   BENCH_WORK=/tmp/nora-bench (scratch: images are built once and kept),
#   BENCH_JSON=FILE (raw figures), CARGO_TARGET_DIR (default ~/.cache/nora-target).
# Exit 0 when every target holds, 3 when one is missed.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/nora-target}

missing=()
for pair in skopeo:skopeo wrk:wrk docker-registry:docker-registry python3:python3; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/bin/${pair%%:*}" ] || missing+=("${pair##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian starts the peer as a system service on install; the benchmark runs its own.
command -v systemctl >/dev/null 2>&1 && systemctl stop docker-registry 2>/dev/null || true

cargo build --release --quiet
args=(--nora "$CARGO_TARGET_DIR/release/nora" --peer /usr/bin/docker-registry
      --peer-config "$PWD/bench/distribution.yml" --rounds "${1:-3}")
[ -n "${BENCH_JSON:-}" ] && args+=(--json "$BENCH_JSON")
exec python3 bench/bench.py "${args[@]}"
