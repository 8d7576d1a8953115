#!/usr/bin/env python3
"""What route rate limits cost, measured on this machine.

1. Per check, in process: Benchmarks/RateLimitBench (release) with Benchmarks/alloc_count.c preloaded, so every
   malloc/calloc/realloc/posix_memalign is counted: nanoseconds and allocations per check for an existing key, the
   refused path, concurrency acquire + release, a flood of new keys, and the key hash alone.
2. compare.py static-1k with a limit on the static route that never triggers (1,000,000/s; and the same with a
   per-key concurrency cap) vs no limit, interleaved for --rounds rounds; each round carries its own nginx anchor
   and the verdict is median(limited) / median(none) of the Vantage/nginx ratios.
3. A flood of --flood distinct client addresses (X-Forwarded-For from a trusted proxy, one request each, pipelined
   over 8 connections) through the binary, on a route limited to 10/s burst 10 per address, while one abusive
   client hammers the same route with wrk: RSS before and after (the same flood with no limit as the baseline),
   keys held, evictions, and the abuser's accepted rate against the configured one (the limiter stays correct).

Usage: Benchmarks/ratelimit.py [--rounds 3] [--flood 1000000]   (from the repository root; needs nginx, wrk, h2load
and a C compiler; Benchmarks/run.sh installs the first three)
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tracking import ROOT, TEMPLATE, interleaved_ratios, metrics, rss_kib, start_vantage  # noqa: E402

RELEASE_FLAGS = ["-c", "release", "-Xswiftc", "-enforce-exclusivity=unchecked"]


def per_check(scratch, iterations):
    library = os.path.join(scratch, "alloc_count.so")
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", library, os.path.join(ROOT, "Benchmarks", "alloc_count.c")],
                   check=True)
    subprocess.run(["swift", "build", *RELEASE_FLAGS, "--product", "ratelimit-bench"], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    folder = subprocess.run(["swift", "build", *RELEASE_FLAGS, "--show-bin-path"], check=True, cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    environment = dict(os.environ, LD_PRELOAD=library)
    subprocess.run([os.path.join(folder, "ratelimit-bench"), str(iterations)], check=True, env=environment)


def template_with_limit(limit, path):
    """compare.py's template with `limit` (a rate_limit mapping, or None) on its static route."""
    text = open(TEMPLATE).read()
    anchor = "      - path: /\n        static:\n"
    assert anchor in text, "the static route of compare.yaml.template moved"
    if limit:
        text = text.replace(anchor, f"      - path: /\n        rate_limit: {limit}\n        static:\n")
    with open(path, "w") as f:
        f.write(text)
    return path


def never_triggering(binary, rounds, scratch):
    modes = {
        "none": None,
        "rate": "{ rate: 1000000/s, burst: 1000000 }",
        "rate+conc": "{ rate: 1000000/s, burst: 1000000, concurrency: 100000 }",
    }
    ratios = interleaved_ratios(binary, modes, rounds, scratch, "limit", make_template=template_with_limit)
    base = statistics.median(ratios["none"])
    for label in ("rate", "rate+conc"):
        print(f"compare.py static-1k, never-triggering limit ({label}) vs none "
              f"(median of {rounds} interleaved rounds): {statistics.median(ratios[label]) / base:.3f}")


def flood_config(folder, limited):
    os.makedirs(os.path.join(folder, "www"), exist_ok=True)
    with open(os.path.join(folder, "www", "1k.html"), "w") as f:
        f.write("<html>" + "x" * 1011 + "</html>")
    path = os.path.join(folder, f"flood-{'limited' if limited else 'none'}.yaml")
    limit = "        rate_limit: { rate: 10/s, burst: 10 }\n" if limited else ""
    with open(path, "w") as f:
        f.write(f"""listen: {{ http: "127.0.0.1:0" }}
sites:
  - routes:
      - path: /
{limit}        static: {{ root: "{folder}/www" }}
access_log: off
admin: {{ listen: "127.0.0.1:0" }}
trusted_proxies: [127.0.0.1/32]
tracking: {{ enabled: false }}
""")
    return path


def send_flood(port, count):
    """`count` requests, each from its own address, pipelined over 8 connections; returns (seconds, refused)."""
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
    sent = refused = 0
    started = time.time()
    while sent < count:
        for sock in sockets:
            n = min(200, count - sent)
            if n <= 0:
                break
            payload = b"".join(
                b"GET /1k.html HTTP/1.1\r\nHost: bench\r\nX-Forwarded-For: 10.%d.%d.%d\r\n\r\n"
                % ((i >> 16) & 255, (i >> 8) & 255, i & 255) for i in range(sent, sent + n))
            sock.sendall(payload)
            buffer = b""
            while buffer.count(b"HTTP/1.1 ") < n:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise SystemExit("connection closed during the flood")
                buffer += chunk
            refused += buffer.count(b"HTTP/1.1 429")
            sent += n
    elapsed = time.time() - started
    for sock in sockets:
        sock.close()
    return elapsed, refused


def flood(binary, scratch, count):
    growth = {}
    for limited in (False, True):
        label = "limited" if limited else "none"
        folder = os.path.join(scratch, f"flood-{label}")
        os.makedirs(folder)
        process, http, admin = start_vantage(binary, flood_config(folder, limited), folder)
        try:
            time.sleep(1)
            before = rss_kib(process.pid)
            abuser = {}

            def hammer(seconds):
                out = subprocess.run(["wrk", "-t1", "-c4", f"-d{seconds}s", "-H", "X-Forwarded-For: 198.51.100.7",
                                      f"http://127.0.0.1:{http}/1k.html"], check=True, capture_output=True, text=True).stdout
                total = int(re.search(r"(\d+) requests in", out).group(1))
                refused = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
                abuser.update(total=total, accepted=total - (int(refused.group(1)) if refused else 0), seconds=seconds)

            thread = threading.Thread(target=hammer, args=(20,)) if limited else None
            if thread:
                thread.start()
            elapsed, refused = send_flood(http, count)
            if thread:
                thread.join()
            time.sleep(1)
            after = rss_kib(process.pid)
            values = metrics(admin)
            route = 'route="default /"'
            growth[label] = after - before
            line = (f"{count:,} distinct client addresses, limit {label}, in {elapsed:.1f} s: RSS {before / 1024:.1f} MiB "
                    f"before, {after / 1024:.1f} MiB after (+{(after - before) / 1024:.1f} MiB)")
            if limited:
                keys = values.get(f"vantage_ratelimit_keys{{{route}}}", 0)
                evictions = values.get(f"vantage_ratelimit_evictions_total{{{route}}}", 0)
                expected = 10 * abuser["seconds"] + 10
                line += (f"; {refused} of the flood refused; table {keys:.0f} keys, {evictions:.0f} evicted while active; "
                         f"the abuser sent {abuser['total']:,} requests in {abuser['seconds']} s, {abuser['accepted']} "
                         f"accepted (configured: {expected}, {abuser['accepted'] / expected:.3f} of it)")
            print(line, flush=True)
        finally:
            process.terminate()
            process.wait(timeout=60)
            shutil.rmtree(folder, ignore_errors=True)
    print(f"memory the limiter's table took for {count:,} addresses (RSS growth limited minus none): "
          f"{(growth['limited'] - growth['none']) / 1024:.1f} MiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vantage", default=None, help="release binary (default: scripts/build-release.sh)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=5_000_000, help="checks per in-process case")
    parser.add_argument("--flood", type=int, default=1_000_000)
    parser.add_argument("--skip", default="", help="comma-separated steps to skip: check, compare, flood")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    scratch = tempfile.mkdtemp(prefix="vantage-ratelimit-bench-")
    try:
        if "check" not in skip:
            per_check(scratch, args.iterations)
        if skip >= {"compare", "flood"}:
            return
        binary = os.path.abspath(args.vantage) if args.vantage else subprocess.run(
            [os.path.join(ROOT, "scripts", "build-release.sh")], check=True, capture_output=True, text=True).stdout.strip()
        if "compare" not in skip:
            never_triggering(binary, args.rounds, scratch)
        if "flood" not in skip:
            flood(binary, scratch, args.flood)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
