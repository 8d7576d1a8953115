#!/usr/bin/env bash
# Installs the Debian packages Vantage builds against (brotli, zlib, libmaxminddb, PCRE2, LZ4 and nghttp2 headers, pkg-config), the
# user-agent lists it reads at start (Debian's uap-core; the crawler-user-agents list from PyPI, into
# /usr/local/share/vantage) and, with --tests, the
# peers its tests drive: curl, nghttp/h2load, openssl, Node for the proxy test backend, Python with venv for
# uvicorn, MaxMind's database writer (Perl) for the GeoIP test database, ClickHouse for the tracking tests (the package does not start a server where policy-rc.d forbids
# it; the tests start their own on free loopback ports), wrk for load, Pebble, the ACME test server, Chromium
# (headless) for the dashboard's pages, and nats-server for the NATS sink.
# Idempotent; needs root (or sudo) on Debian/Ubuntu. The Swift toolchain itself is expected on PATH.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
packages=(libbrotli-dev zlib1g-dev libmaxminddb-dev libpcre2-dev liblz4-dev libnghttp2-dev pkg-config curl ca-certificates uap-core python3)
if [ "${1:-}" = "--tests" ]; then
  packages+=(openssl nghttp2-client nodejs python3 python3-venv libmaxmind-db-writer-perl clickhouse-server clickhouse-client wrk pebble chromium goaccess logrotate systemd prometheus nats-server)
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
crawlers=/usr/local/share/vantage/crawler-user-agents.json
if [ ! -s "$crawlers" ]; then
  fetched=$(mktemp)
  python3 "$(dirname "$0")/fetch-crawler-list.py" "$fetched" >/dev/null
  $SUDO install -D -m 0644 "$fetched" "$crawlers"
  rm -f "$fetched"
fi
