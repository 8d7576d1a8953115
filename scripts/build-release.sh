#!/usr/bin/env bash
# The one release build of Vantage (scripts/run.sh, Benchmarks/run.sh and the Dockerfile all use it); prints the
# binary's path. Extra arguments go to `swift build`.
#
# -enforce-exclusivity=unchecked drops Swift's run-time exclusivity checks in every module, dependencies included
# (compile-time checks stay). The data plane is confined to event loops by construction, and in profiles those
# checks (AccessSet, beginAccess, thread-local lookups, mostly inside NIO's ByteBuffer) were about 9% of the CPU
# of a proxied request. Debug and test builds keep them.
#
# Function layout: every function gets its own section, and the linker (lld, shipped with the Swift toolchain)
# puts those listed in scripts/function-order.txt (the ones that serve requests, hottest first; written by
# Benchmarks/function_order.py) together at the start of the code instead of scattered over it in link order.
# About 5% less CPU a request on average over compare.py's scenarios (docs/PERFORMANCE.md). Without lld or the list
# the build is as before.
#
# The Swift runtime is linked in (--static-swift-stdlib): the binary runs without the toolchain's shared libraries
# (the Docker image needs no Swift runtime), and the runtime's functions every request calls hundreds of times
# (swift_retain, swift_release, the uniqueness check) are called directly instead of through the shared library's
# procedure linkage table, and are laid out with the request path by the list above. 5-15% less CPU a request
# than the same build linked against the shared runtime (docs/PERFORMANCE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
flags=(-c release --product vantage --static-swift-stdlib -Xswiftc -enforce-exclusivity=unchecked)
order="$PWD/scripts/function-order.txt"
if [ -f "$order" ] && command -v ld.lld >/dev/null; then
    flags+=(-Xswiftc -Xfrontend -Xswiftc -function-sections -Xswiftc -use-ld=lld
        -Xlinker "--symbol-ordering-file=$order" -Xlinker --no-warn-symbol-ordering)
fi
flags+=("$@")
swift build "${flags[@]}" >&2
echo "$(swift build "${flags[@]}" --show-bin-path)/vantage"
