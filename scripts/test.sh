#!/usr/bin/env bash
# The whole test suite: unit tests and integration tests that start the real vantage binary on 127.0.0.1
# ephemeral ports and drive it with curl, nghttp and openssl.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests
swift test
