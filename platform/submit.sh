#!/usr/bin/env bash
# Submit graphium-ray commands to any Ray cluster as one job.
#   platform/submit.sh [--address URL] [--no-wait] -- train sweeps/toymix.yaml --set train.num_workers=8
#   platform/submit.sh -- make-data quickstart --then train sweeps/quickstart.yaml --output /shared/runs/qs
# Commands separated by `--then` run one after the other in the job's working directory (a copy of
# this repository that Ray unpacks on the head node, inside its session directory), stopping at the
# first failure. Give `--output` a path the cluster's nodes share (or s3://... for checkpoints via
# train.storage_path): a relative path lands in that temporary copy. Each command prints where it
# wrote its results.
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
[[ $# -gt 0 ]] || { echo "usage: $0 [--address URL] [--no-wait] -- <graphium-ray args> [--then <graphium-ray args>]..." >&2; exit 2; }
# one shell-quoted `graphium-ray ...` per command, joined with &&
entrypoint=""
command="graphium-ray"
for arg in "$@"; do
  if [[ "$arg" == "--then" ]]; then
    entrypoint+="${command} && "
    command="graphium-ray"
  else
    command+=" $(printf '%q' "$arg")"
  fi
done
entrypoint+="${command}"
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"
exec ray job submit --address "$address" --working-dir . --runtime-env platform/runtime_env.yaml \
  "${extra[@]}" -- bash -c "$entrypoint"
