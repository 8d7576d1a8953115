#!/usr/bin/env bash
# The one release build of Vantage (scripts/run.sh, Benchmarks/run.sh and the Dockerfile all use it); prints the
# binary's path. Extra arguments go to `swift build` (the Dockerfile adds --static-swift-stdlib).
#
# -enforce-exclusivity=unchecked drops Swift's run-time exclusivity checks in every module, dependencies included
# (compile-time checks stay). The data plane is confined to event loops by construction, and in profiles those
# checks (AccessSet, beginAccess, thread-local lookups, mostly inside NIO's ByteBuffer) were about 9% of the CPU
# of a proxied request. Debug and test builds keep them.
set -euo pipefail
cd "$(dirname "$0")/.."
flags=(-c release --product vantage -Xswiftc -enforce-exclusivity=unchecked "$@")
swift build "${flags[@]}" >&2
echo "$(swift build "${flags[@]}" --show-bin-path)/vantage"
