#!/usr/bin/env bash
# The whole test suite: unit tests and integration tests that start the real vantage binary on 127.0.0.1
# ephemeral ports and drive it with curl, nghttp and openssl, against real Node and uvicorn backends.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --tests
# From PyPI: uvicorn (the ASGI backend of the proxy tests), websockets (its WebSocket support and the test
# client), chdb (a current ClickHouse, embedded, for the modern schema dialect; Debian packages only 18.16), and h2
# (the HTTP/2 client of the hostile-input tests, which sends what a conforming client would not); for the user-agent
# corpus tests, the crawler-user-agents list and Matomo Device Detector's fixtures (shipped in its Python port,
# installed without its dependencies: only the fixtures are read, with PyYAML); lz4 makes the binary WebSocket
# frames the Go tracker's client sends (a size-prefixed LZ4 block); nats-py makes and reads the NATS sink's streams.
if ! .build/test-venv/bin/python -c 'import importlib.util as u, uvicorn, websockets, chdb, h2, yaml, crawleruseragents, lz4.block, nats
assert u.find_spec("device_detector")' 2>/dev/null; then
  rm -rf .build/test-venv
  python3 -m venv .build/test-venv
  .build/test-venv/bin/pip install -q --disable-pip-version-check 'uvicorn==0.*' 'websockets>=12' 'chdb>=3' 'h2>=4' 'pyyaml>=6' \
    'crawler-user-agents>=1.67' 'lz4>=4' 'nats-py>=2.6'
  .build/test-venv/bin/pip install -q --disable-pip-version-check --no-deps 'device_detector>=6.5'
fi
swift build --build-tests
swift test
