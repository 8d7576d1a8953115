#!/usr/bin/env bash
# What header rules and error pages cost: compare.py with Benchmarks/compare.yaml.template and with
# Benchmarks/compare-headers.yaml.template (two header rules, two error pages), one after the other on the same
# machine, against the same nginx. Prints both tables; compare the Vantage/nginx ratios.
# Usage: Benchmarks/headers.sh [--rounds 3] [--scenarios static-1k,https-1k,proxy-h1,h2-1k]
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS="${HARNESS:-../shared/bench/compare.py}"
binary="$(scripts/build-release.sh)"
rounds=3
scenarios="static-1k,https-1k,proxy-h1,h2-1k"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --scenarios) scenarios="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
for template in compare.yaml.template compare-headers.yaml.template; do
  echo "== $template"
  python3 "$HARNESS" --vantage "$binary" --config "Benchmarks/$template" --rounds "$rounds" --scenarios "$scenarios"
done
