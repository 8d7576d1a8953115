#!/usr/bin/env bash
# Fuzzes the request-target decisions (Benchmarks/Fuzz/RequestTargetFuzz.swift) with libFuzzer from the Swift
# toolchain, for a bounded time; new inputs that reach new code are merged into Benchmarks/Fuzz/corpus.
# Usage: Benchmarks/fuzz.sh [seconds, default 300]   (not run by CI)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
work=.build/fuzz
mkdir -p "$work/new"
swiftc -O -g -sanitize=fuzzer,address -parse-as-library -module-name RequestTargetFuzz \
  Sources/RequestTarget/*.swift Benchmarks/Fuzz/RequestTargetFuzz.swift \
  -o "$work/request-target-fuzz"
"$work/request-target-fuzz" -max_total_time="$seconds" -max_len=512 -timeout=5 \
  -dict=Benchmarks/Fuzz/http.dict "$work/new" Benchmarks/Fuzz/corpus
# Keep the committed corpus small: only inputs that add coverage.
"$work/request-target-fuzz" -merge=1 Benchmarks/Fuzz/corpus "$work/new" >/dev/null 2>&1
echo "corpus: $(ls Benchmarks/Fuzz/corpus | wc -l) inputs"
