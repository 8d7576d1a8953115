#!/usr/bin/env python3
"""What the reports cost in the embedded default (no ClickHouse): the dashboard and `vantage stats` over a spool of
--events page views.

1. --events page views (default one million) recorded into the spool by wrk: realistic browser agents, 20,000
   client addresses (X-Forwarded-For from a trusted proxy, so about as many visitors), 40 pages, a few referrers and
   campaigns, three page views a visit on average.
2. The dashboard page (`GET /` on the admin listener, period today) timed --repeats times: first and median; the
   Vantage process's RSS before and at its highest during those requests (the report's memory).
3. `vantage stats --by page` timed, with its peak RSS (/usr/bin/time).
4. With --compare N: compare.py static-1k with and without a browser asking for the dashboard every second (the
   admin listener on a fixed port), interleaved for N rounds: the ratio of the Vantage/nginx ratios. The spool
   grows by the benchmark's own requests, so each refresh reads all of them.

Usage: Benchmarks/insights.py [--events 1000000] [--repeats 5] [--compare 3]
(from the repository root, after scripts/build-release.sh; needs wrk, and nginx for --compare)
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tracking import ROOT, TEMPLATE, free_port, interleaved_ratios, rss_kib, start_vantage  # noqa: E402

FLOOD = """
local agents = {
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
}
local referrers = {"https://www.google.com/", "https://t.co/x", "", "https://news.ycombinator.com/", ""}
local requests = {}
local count = 60000
local counter = 0
function init(args)
  for n = 0, count - 1 do
    local client = n % 20000
    local page = (n * 7) % 40
    local headers = {["Host"] = "bench.test", ["User-Agent"] = agents[(client % 5) + 1], ["X-Forwarded-For"] = string.format("10.%d.%d.%d", client % 200, math.floor(client / 200) % 200, n % 3)}
    local referrer = referrers[(client % 5) + 1]
    if referrer ~= "" then headers["Referer"] = referrer end
    local path = string.format("/page%d.html", page)
    if client % 11 == 0 then path = path .. "?utm_source=newsletter&utm_medium=email&utm_campaign=c" .. (client % 4) end
    requests[n] = wrk.format("GET", path, headers)
  end
end
request = function()
  counter = (counter + 1) % count
  return requests[counter]
end
"""


def config(folder):
    os.makedirs(os.path.join(folder, "www"), exist_ok=True)
    for page in range(40):
        with open(os.path.join(folder, "www", f"page{page}.html"), "w") as f:
            f.write(f"<html><body>page {page}</body></html>")
    path = os.path.join(folder, "insights.yaml")
    with open(path, "w") as f:
        f.write(f"""listen: {{ http: "127.0.0.1:0" }}
sites:
  - hosts: [bench.test]
    routes:
      - {{ path: /, static: {{ root: "{folder}/www" }} }}
access_log: off
admin: {{ listen: "127.0.0.1:0" }}
trusted_proxies: [127.0.0.1/32]
tracking:
  spool: {{ dir: "{folder}/spool", max_size: 8GB }}
""")
    return path


def record(binary, folder, events):
    """Floods until the spool holds about `events` page views; returns the running process and its ports."""
    process, http, admin = start_vantage(binary, config(folder), folder)
    script = os.path.join(folder, "flood.lua")
    with open(script, "w") as f:
        f.write(FLOOD)
    started = time.time()
    recorded = 0
    while recorded < events:
        subprocess.run(["wrk", "-t2", "-c32", "-d5s", "-s", script, f"http://127.0.0.1:{http}/"],
                       check=True, capture_output=True)
        text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=10).read().decode()
        match = re.search(r'^vantage_events_recorded_total\S* (\d+)', text, re.M)
        recorded = int(match.group(1)) if match else recorded
    print(f"recorded {recorded:,} events in {time.time() - started:.0f} s", flush=True)
    return process, http, admin


def time_dashboard(process, admin, repeats):
    url = f"http://127.0.0.1:{admin}/?period=today&site=bench.test"
    before = rss_kib(process.pid)
    peak = before
    done = threading.Event()

    def watch():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kib(process.pid))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    times = []
    for _ in range(repeats):
        started = time.time()
        page = urllib.request.urlopen(url, timeout=120).read().decode()
        times.append(time.time() - started)
    done.set()
    watcher.join()
    visitors = re.search(r"<dt>Visitors</dt><dd>([\d,]+)", page)
    print(f"dashboard page: first {times[0]:.2f} s, median {statistics.median(times):.2f} s over {repeats}; "
          f"visitors {visitors.group(1) if visitors else '?'}; RSS {before / 1024:.0f} MiB before, "
          f"{peak / 1024:.0f} MiB at most (+{(peak - before) / 1024:.0f} MiB)", flush=True)


def time_stats(binary, folder):
    started = time.time()
    result = subprocess.run(["/usr/bin/time", "-v", binary, "stats", "--config", os.path.join(folder, "insights.yaml"),
                             "--range", "today", "--by", "page", "--limit", "5"], capture_output=True, text=True)
    elapsed = time.time() - started
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    print(f"vantage stats --by page: {elapsed:.2f} s, peak RSS {int(peak.group(1)) / 1024 if peak else -1:.0f} MiB", flush=True)
    print(result.stdout, flush=True)


def compare_with_dashboard(binary, rounds, scratch):
    """static-1k with and without a dashboard refresh every second."""
    port = free_port()
    template = open(TEMPLATE).read().replace('admin:\n  listen: "127.0.0.1:0"', f'admin:\n  listen: "127.0.0.1:{port}"')
    refreshing = threading.Event()
    done = threading.Event()
    answered = []

    def refresh():
        while not done.is_set():
            if refreshing.is_set():
                started = time.time()
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/?period=today", timeout=30).read()
                    answered.append(time.time() - started)
                except OSError:
                    pass  # Vantage is between runs
            time.sleep(1)

    def make_template(mode, path):
        (refreshing.set if mode == "dashboard" else refreshing.clear)()
        with open(path, "w") as f:
            f.write(template)
        return path

    worker = threading.Thread(target=refresh, daemon=True)
    worker.start()
    try:
        ratios = interleaved_ratios(binary, {"plain": "plain", "dashboard": "dashboard"}, rounds, scratch,
                                    "with a dashboard refresh every second:", make_template)
    finally:
        done.set()
    ratio = statistics.median(ratios["dashboard"]) / statistics.median(ratios["plain"])
    print(f"compare.py static-1k with a dashboard refresh every second vs without: {ratio:.3f} "
          f"({len(answered)} pages, median {statistics.median(answered) if answered else 0:.2f} s each)", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vantage", default=os.path.join(ROOT, ".build", "x86_64-unknown-linux-gnu", "release", "vantage"))
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compare", type=int, default=0, help="rounds of step 4 (0: skip it)")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="vantage-insights-")
    try:
        folder = os.path.join(scratch, "spool-run")
        process, http, admin = record(args.vantage, folder, args.events)
        try:
            time.sleep(1)
            time_dashboard(process, admin, args.repeats)
        finally:
            process.terminate()
            process.wait(timeout=60)
        time_stats(args.vantage, folder)
        if args.compare:
            compare_with_dashboard(args.vantage, args.compare, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
