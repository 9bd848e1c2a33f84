#!/usr/bin/env bash
# Submit a graphium-ray command to any Ray cluster as a job.
#   platform/submit.sh [--address URL] [--no-wait] -- train sweeps/toymix.yaml --set train.num_workers=8
# Default address: $RAY_ADDRESS, else http://127.0.0.1:8265 (a local head, or a tunnel/port-forward
# to a remote one: the dashboard is never exposed publicly). Token auth is on by default.
set -euo pipefail
cd "$(dirname "$0")/.."
address="${RAY_ADDRESS:-http://127.0.0.1:8265}"
extra=()
while [[ $# -gt 0 && "$1" != "--" ]]; do
  case "$1" in
    --address) address="$2"; shift 2 ;;
    --no-wait) extra+=(--no-wait); shift ;;
    *) echo "unknown option $1 (put graphium-ray arguments after --)" >&2; exit 2 ;;
  esac
done
[[ "${1:-}" == "--" ]] && shift
[[ $# -gt 0 ]] || { echo "usage: $0 [--address URL] [--no-wait] -- <graphium-ray args>" >&2; exit 2; }
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"
exec ray job submit --address "$address" --working-dir . --runtime-env platform/runtime_env.yaml \
  "${extra[@]}" -- graphium-ray "$@"
