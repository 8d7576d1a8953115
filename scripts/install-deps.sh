#!/usr/bin/env bash
# Installs the Debian packages Vantage builds against (brotli, zlib and libmaxminddb headers, pkg-config) and, with
# --tests, the
# peers its tests drive: curl, nghttp/h2load, openssl, Node for the proxy test backend, Python with venv for
# uvicorn, MaxMind's database writer (Perl) for the GeoIP test database, ClickHouse for the tracking tests (the package does not start a server where policy-rc.d forbids
# it; the tests start their own on free loopback ports), wrk for load, and Pebble, the ACME test server.
# Idempotent; needs root (or sudo) on Debian/Ubuntu. The Swift toolchain itself is expected on PATH.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
packages=(libbrotli-dev zlib1g-dev libmaxminddb-dev pkg-config curl ca-certificates)
if [ "${1:-}" = "--tests" ]; then
  packages+=(openssl nghttp2-client nodejs python3 python3-venv libmaxmind-db-writer-perl clickhouse-server clickhouse-client wrk pebble)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
