#!/usr/bin/env bash
# Installs what is needed, builds Vantage in release mode and runs it on conf/vantage.yaml (http://127.0.0.1:8080,
# admin on 127.0.0.1:9901). Extra arguments go to `vantage run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
binary=$(scripts/build-release.sh)
exec "$binary" run --config conf/vantage.yaml "$@"
