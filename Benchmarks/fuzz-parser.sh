#!/usr/bin/env bash
# Fuzzes the HTTP/1.1 request parser (Sources/HTTP1Parser) differentially against NIO's decoder
# (Benchmarks/Fuzz/RequestParserFuzz.swift) with libFuzzer from the Swift toolchain, for a bounded time; new inputs
# that reach new code are merged into Benchmarks/Fuzz/parser-corpus. Usage: Benchmarks/fuzz-parser.sh [seconds]
# (not run by CI). SwiftPM builds the parser and NIO with coverage instrumentation in a scratch package under
# .build (so the flags touch nothing else), and swiftc links the harness with libFuzzer's own main.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
work=$PWD/.build/parser-fuzz
mkdir -p "$work/Sources/FuzzDeps" "$work/new" Benchmarks/Fuzz/parser-corpus
rm -rf "$work/Sources/HTTP1Parser"
cp -R Sources/HTTP1Parser "$work/Sources/HTTP1Parser"
echo "// Pulls NIOEmbedded into the build." > "$work/Sources/FuzzDeps/FuzzDeps.swift"
nio_version=$(sed -n 's|.*swift-nio.git", from: "\([0-9.]*\)".*|\1|p' Package.swift)
cat > "$work/Package.swift" <<PACKAGE
// swift-tools-version: 6.0
import PackageDescription
let package = Package(
    name: "ParserFuzz",
    dependencies: [.package(url: "https://github.com/apple/swift-nio.git", from: "$nio_version")],
    targets: [
        .target(name: "HTTP1Parser", dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio")],
                swiftSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])]),
        .target(name: "FuzzDeps", dependencies: ["HTTP1Parser", .product(name: "NIOEmbedded", package: "swift-nio")]),
    ]
)
PACKAGE
(cd "$work" && swift build -c release >/dev/null)
python3 - "$work" <<'LINK'
import glob, subprocess, sys
work = sys.argv[1]
built = glob.glob(work + "/.build/*-unknown-linux-gnu/release")[0]
unused = ["FuzzDeps.build", "RequestParserFuzz.build", "NIOTestUtils", "NIOFileSystem", "NIOFoundation", "NIOWebSocket", "NIOTLS", "/NIO.build",
          "/Collections.build", "BitCollections", "HashTree", "HeapModule", "OrderedColl", "SortedColl", "CNIODarwin",
          "CNIOFreeBSD", "CNIOOpenBSD", "CNIOWASI", "CNIOWindows"]
objects = [o for o in glob.glob(built + "/*.build/**/*.o", recursive=True) if not any(u in o for u in unused)]
command = ["swiftc", "-O", "-parse-as-library", "-sanitize=fuzzer,address", "-I", built + "/Modules"]
for include in glob.glob(work + "/.build/checkouts/*/Sources/*/include"):
    command += ["-Xcc", "-I" + include]
for modulemap in glob.glob(built + "/*.build/module.modulemap") + glob.glob(built + "/*.build/include/module.modulemap"):
    command += ["-Xcc", "-fmodule-map-file=" + modulemap]
command += ["Benchmarks/Fuzz/RequestParserFuzz.swift"] + objects + ["-o", work + "/request-parser-fuzz"]
subprocess.run(command, check=True)
LINK
fuzzer="$work/request-parser-fuzz"
"$fuzzer" -max_total_time="$seconds" -max_len=2048 -timeout=5 -dict=Benchmarks/Fuzz/http.dict "$work/new" Benchmarks/Fuzz/parser-corpus
# Keep the committed corpus small: only inputs that add coverage.
"$fuzzer" -merge=1 Benchmarks/Fuzz/parser-corpus "$work/new" >/dev/null 2>&1
echo "corpus: $(ls Benchmarks/Fuzz/parser-corpus | wc -l) inputs"
