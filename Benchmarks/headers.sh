#!/usr/bin/env bash
# What header rules and error pages cost: compare.py with Benchmarks/compare.yaml.template and with
# Benchmarks/compare-headers.yaml.template (two header rules, two error pages), alternating one round of each so
# that drift of the machine falls on both alike; prints each round's Vantage/nginx ratios and their medians.
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
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for round in $(seq "$rounds"); do
  for template in compare compare-headers; do
    python3 "$HARNESS" --vantage "$binary" --config "Benchmarks/$template.yaml.template" --rounds 1 \
      --scenarios "$scenarios" --json "$out/$template-$round.json" >/dev/null
  done
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
folder, rounds = sys.argv[1], int(sys.argv[2])
def ratios(template):
    return [json.load(open(f"{folder}/{template}-{r}.json"))["ratios"] for r in range(1, rounds + 1)]
plain, rules = ratios("compare"), ratios("compare-headers")
print(f"{'scenario':<12} {'without (per round)':<24} {'with (per round)':<24} {'median without':>15} {'median with':>12} {'with/without':>13}")
for scenario in plain[0]:
    a = [r[scenario] for r in plain if r.get(scenario)]
    b = [r[scenario] for r in rules if r.get(scenario)]
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"{scenario:<12} {' '.join(f'{x:.3f}' for x in a):<24} {' '.join(f'{x:.3f}' for x in b):<24} {ma:>15.3f} {mb:>12.3f} {mb / ma:>13.3f}")
PY
