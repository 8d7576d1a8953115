#!/usr/bin/env python3
"""What enrichment costs, what the user-agent cache does, and what a million visitors' sessions weigh.

1. compare.py static-1k with enrichment on (GeoIP from a test database, cookieless visitors and sessions, device,
   source) and off (`tracking.enrichment: false`: raw request events), both into the local spool, interleaved for
   --rounds rounds; each round carries its own nginx anchor, and the verdict is median(on) / median(off) of the
   Vantage/nginx ratios. compare.py's wrk sends no User-Agent, so every request is classified as an empty-agent
   machine and skips sessions; step 2 covers the browser path.
2. The same two modes under wrk with a browser User-Agent and a search-engine Referer on /1k.html (page views: UA
   cache, traffic source, visitor hash, session table, GeoIP on every request), interleaved, Vantage alone;
   prints the ratio and the UA cache hit rate from /metrics.
3. One million requests, each from a different client address (X-Forwarded-For from a trusted proxy), so one
   million cookieless visitors with a session each: RSS before and after, session table evictions.
4. A flood of --agents distinct user agents (realistic phone and desktop agents with varying models and
   versions, cycled by wrk from requests built at its start, so the per-loop cache never holds them) against the
   same flood with one repeated agent (built the same way),
   with the user-agent lists loaded; interleaved, Vantage alone; the verdict is the throughput ratio (distinct /
   repeated). Then Benchmarks/UserAgentBench (release) times every agent of a corpus uncached, in process: the
   cost of an agent the rules have never seen (the corpus: one agent a line in --corpus, e.g. the output of
   Tests/IntegrationTests/Backends/ua_corpus.py, third column).

Usage: Benchmarks/enrichment.py [--rounds 5] [--visitors 1000000] [--agents 100000] [--corpus agents.txt]
(from the repository root, after
scripts/build-release.sh; needs nginx, wrk, h2load and Debian's libmaxmind-db-writer-perl)
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
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tracking import ROOT, interleaved_ratios, metrics, rss_kib, start_vantage  # noqa: E402

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def make_geoip(path):
    subprocess.run(["perl", os.path.join(ROOT, "Tests", "IntegrationTests", "Backends", "make_geoip.pl"), path], check=True)


def standalone_config(folder, enrichment, geoip, extra=""):
    os.makedirs(os.path.join(folder, "www"), exist_ok=True)
    with open(os.path.join(folder, "www", "1k.html"), "w") as f:
        f.write("<html>" + "x" * 1011 + "</html>")
    path = os.path.join(folder, f"enrichment-{'on' if enrichment else 'off'}.yaml")
    with open(path, "w") as f:
        f.write(f"""listen: {{ http: "127.0.0.1:0" }}
sites:
  - routes:
      - {{ path: /, static: {{ root: "{folder}/www" }} }}
access_log: off
admin: {{ listen: "127.0.0.1:0" }}
trusted_proxies: [127.0.0.1/32]
tracking:
  spool: {{ dir: "{folder}/spool-{'on' if enrichment else 'off'}", max_size: 8GB }}
  enrichment: {'true' if enrichment else 'false'}
  geoip: "{geoip}"
{extra}""")
    return path


def wrk_browser(binary, config, folder, seconds):
    process, http, admin = start_vantage(binary, config, folder)
    try:
        out = subprocess.run(["wrk", "-t1", "-c64", f"-d{seconds}s", "-H", f"User-Agent: {FIREFOX}",
                              "-H", "Referer: https://www.google.com/", f"http://127.0.0.1:{http}/1k.html"],
                             check=True, capture_output=True, text=True).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        values = metrics(admin)
        return rps, values.get('vantage_useragent_cache_lookups_total{result="hit"}', 0), \
            values.get('vantage_useragent_cache_lookups_total{result="miss"}', 0)
    finally:
        process.terminate()
        process.wait(timeout=60)


FLOOD_SCRIPT = """
-- Every request is built once, at init, in both modes (DISTINCT agents, or one agent repeated as many times), so
-- the load generator, which shares the cores, does the same work per request either way: building a new string
-- per request cost wrk about 3 us more than reusing one, which the ratio would have charged to Vantage.
local templates = {
  "Mozilla/5.0 (Linux; Android %d; SM-A%03dB) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.%d.0 Mobile Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS %d_%d like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/%d.%d Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.%d.%d Safari/537.36 Edg/%d.0",
  "Mozilla/5.0 (Linux; Android %d; Redmi Note %d Build/TKQ1.%06d; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/%d.0 Mobile Safari/537.36 Instagram %d.0",
}
local distinct = DISTINCT
local count = COUNT
local requests = {}
local counter = 0
function setup(thread)
  thread:set("offset", math.random(0, count - 1))
end
function init(args)
  for n = 0, count - 1 do
    local agent
    if distinct == 1 then
      agent = string.format(templates[1], 14, 546, 131, 6778)
    else
      local t = templates[(n % 4) + 1]
      agent = string.format(t, 8 + n % 7, n % 1000, 100 + n % 40, n, 100 + n % 300)
    end
    requests[n] = wrk.format("GET", "/1k.html", {["User-Agent"] = agent, ["Referer"] = "https://www.google.com/"})
  end
  counter = tonumber(offset) or 0
end
request = function()
  counter = (counter + 1) % count
  return requests[counter]
end
"""


def wrk_flood(binary, config, folder, seconds, distinct, agents):
    script = os.path.join(folder, "flood.lua")
    with open(script, "w") as f:
        f.write(FLOOD_SCRIPT.replace("DISTINCT", str(distinct)).replace("COUNT", str(agents)))
    process, http, admin = start_vantage(binary, config, folder)
    try:
        out = subprocess.run(["wrk", "-t2", "-c64", f"-d{seconds}s", "-s", script, f"http://127.0.0.1:{http}/1k.html"],
                             check=True, capture_output=True, text=True).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        values = metrics(admin)
        return rps, values.get('vantage_useragent_cache_lookups_total{result="miss"}', 0)
    finally:
        process.terminate()
        process.wait(timeout=60)


def visitors(binary, folder, geoip, count, enrichment=True):
    config = standalone_config(folder, enrichment, geoip, "  visitors: { max_sessions: 1000000 }\n")
    process, http, admin = start_vantage(binary, config, folder)
    try:
        time.sleep(1)
        before = rss_kib(process.pid)
        # Pipelined keep-alive requests over 8 connections, each with its own X-Forwarded-For address.
        sockets = [socket.create_connection(("127.0.0.1", http)) for _ in range(8)]
        sent = 0
        batch = 200
        started = time.time()
        while sent < count:
            for sock in sockets:
                n = min(batch, count - sent)
                if n <= 0:
                    break
                payload = b"".join(
                    b"GET /1k.html HTTP/1.1\r\nHost: bench\r\nUser-Agent: " + FIREFOX.encode()
                    + b"\r\nX-Forwarded-For: 10.%d.%d.%d\r\n\r\n" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)
                    for i in range(sent, sent + n))
                sock.sendall(payload)
                answers = 0
                buffer = b""
                while answers < n:
                    chunk = sock.recv(1 << 20)
                    if not chunk:
                        raise SystemExit("connection closed")
                    buffer += chunk
                    answers = buffer.count(b"HTTP/1.1 200")
                sent += n
        elapsed = time.time() - started
        for sock in sockets:
            sock.close()
        time.sleep(1)
        after = rss_kib(process.pid)
        values = metrics(admin)
        return before, after, elapsed, values.get("vantage_sessions_evicted_total", 0), \
            values.get("vantage_sessions_capacity", 0), values.get("vantage_events_recorded_total", 0)
    finally:
        process.terminate()
        process.wait(timeout=60)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vantage", default=None, help="release binary (default: scripts/build-release.sh)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10, help="length of each browser wrk run")
    parser.add_argument("--visitors", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=100_000, help="distinct user agents of the flood")
    parser.add_argument("--corpus", default=None, help="user agents, one a line, for ua-bench")
    parser.add_argument("--skip", default="", help="comma-separated steps to skip: compare, browser, visitors, agents")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    binary = os.path.abspath(args.vantage) if args.vantage else subprocess.run(
        [os.path.join(ROOT, "scripts", "build-release.sh")], check=True, capture_output=True, text=True).stdout.strip()
    scratch = tempfile.mkdtemp(prefix="vantage-enrichment-bench-")
    geoip = os.path.join(scratch, "geo.mmdb")
    make_geoip(geoip)
    try:
        if "compare" not in skip:
            modes = {
                "off": 'tracking:\n  spool: { dir: "{{WORKDIR}}/spool" }\n  enrichment: false\n',
                "on": f'tracking:\n  spool: {{ dir: "{{{{WORKDIR}}}}/spool" }}\n  geoip: "{geoip}"\n',
            }
            ratios = interleaved_ratios(binary, modes, args.rounds, scratch, "enrichment")
            verdict = statistics.median(ratios["on"]) / statistics.median(ratios["off"])
            print(f"compare.py static-1k, enrichment on vs off (median of {args.rounds} interleaved rounds): {verdict:.3f}")
        if "browser" not in skip:
            rates = {"off": [], "on": []}
            hits = misses = 0
            for round_number in range(args.rounds):
                for label in ("off", "on"):
                    folder = os.path.join(scratch, f"browser-{label}-{round_number}")
                    os.makedirs(folder)
                    config = standalone_config(folder, label == "on", geoip)
                    rps, hit, miss = wrk_browser(binary, config, folder, args.seconds)
                    rates[label].append(rps)
                    if label == "on":
                        hits += hit
                        misses += miss
                    print(f"round {round_number + 1} browser page views, enrichment {label:>3}: {rps:>9.0f} req/s", flush=True)
                    shutil.rmtree(folder, ignore_errors=True)
            ratio = statistics.median(rates["on"]) / statistics.median(rates["off"])
            print(f"browser page views (Firefox UA, Google referrer), enrichment on vs off: {ratio:.3f}; "
                  f"UA cache hit rate {hits / max(1, hits + misses):.6f} ({hits:.0f} hits, {misses:.0f} misses)")
        if "visitors" not in skip:
            # The same requests with enrichment off grow RSS by what the spool's mapped segments and the request
            # path take; the difference is what a million visitors' sessions (and the caches) cost.
            growth = {}
            for label in ("off", "on"):
                folder = os.path.join(scratch, f"visitors-{label}")
                os.makedirs(folder)
                before, after, elapsed, evicted, capacity, recorded = visitors(
                    binary, folder, geoip, args.visitors, enrichment=label == "on")
                growth[label] = after - before
                print(f"{args.visitors:,} distinct client addresses, enrichment {label}, in {elapsed:.1f} s ({recorded:.0f} events): "
                      f"RSS {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB after (+{(after - before) / 1024:.1f} MiB)"
                      + (f"; session table {capacity:.0f} slots x 24 bytes = {capacity * 24 / 1048576:.0f} MiB at most, "
                         f"{evicted:.0f} evictions" if label == "on" else ""), flush=True)
                shutil.rmtree(folder, ignore_errors=True)
            print(f"memory of {args.visitors:,} visitors' sessions (RSS growth on minus off): "
                  f"{(growth['on'] - growth['off']) / 1024:.1f} MiB")
        if "agents" not in skip:
            rates = {"repeated": [], "distinct": []}
            for round_number in range(args.rounds):
                for label in ("repeated", "distinct"):
                    folder = os.path.join(scratch, f"agents-{label}-{round_number}")
                    os.makedirs(folder)
                    config = standalone_config(folder, True, geoip)
                    rps, misses = wrk_flood(binary, config, folder, args.seconds, 1 if label == "repeated" else args.agents,
                                           args.agents)
                    rates[label].append(rps)
                    print(f"round {round_number + 1} {label:>8} user agents: {rps:>9.0f} req/s, {misses:.0f} cache misses",
                          flush=True)
                    shutil.rmtree(folder, ignore_errors=True)
            ratio = statistics.median(rates["distinct"]) / statistics.median(rates["repeated"])
            print(f"{args.agents:,} distinct user agents vs one repeated (median of {args.rounds} interleaved rounds): {ratio:.3f}")
            if args.corpus:
                subprocess.run(["swift", "build", "-c", "release", "-Xswiftc", "-enforce-exclusivity=unchecked",
                                "--product", "ua-bench"], check=True, cwd=ROOT, capture_output=True)
                with open(args.corpus) as corpus:
                    subprocess.run([os.path.join(ROOT, ".build", "release", "ua-bench")], stdin=corpus, check=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
