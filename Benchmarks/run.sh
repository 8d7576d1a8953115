#!/usr/bin/env bash
# Builds Vantage in release mode and compares it with nginx on this machine through ../shared/bench/compare.py.
# Usage: Benchmarks/run.sh [extra compare.py arguments, e.g. --scenarios static-1k,https-1k --rounds 3]
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS=${HARNESS:-../shared/bench/compare.py}
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null || ! command -v h2load >/dev/null; then
  apt-get update -qq && apt-get install -y -qq nginx wrk nghttp2-client curl openssl util-linux >/dev/null
fi
binary=$(scripts/build-release.sh)
mkdir -p .bench
python3 "$HARNESS" --vantage "$binary" --config Benchmarks/compare.yaml.template \
  --json .bench/compare.json "$@"
