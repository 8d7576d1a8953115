#!/usr/bin/env python3
"""Latency percentiles (p50, p99, p99.9, max) per scenario for Vantage and the servers compare.py runs, on the
same tree, certificate, backend and CPU pinning (it imports ../shared/bench/compare.py for all of that).

compare.py reports throughput and wrk's p99; issue 20 asks for p50, p99 and p99.9. wrk prints p99.9 only through
a Lua `done` hook, which this script passes; h2load prints no percentiles, so its `--log-file` (one line per
request with its latency in microseconds) is read instead.

Usage: Benchmarks/latency.py --vantage <release binary> [--config Benchmarks/compare.yaml.template]
       [--scenarios static-1k,https-1k,proxy-h1,https-proxy,h2-1k] [--rounds 3] [--seconds 8]
       [--peer h2o --peer haproxy] [--json FILE]
Each figure is the median over rounds, in milliseconds.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "..", "shared", "bench"))
import compare  # noqa: E402  (the harness we are judged by: its servers, tree and pinning)

WRK_SCRIPT = """done = function(summary, latency, requests)
  io.write(string.format("LATENCY %d %d %d %d\\n", latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
"""


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


def measure(server, scenario, seconds, pin, work):
    """(p50, p99, p99.9, max) in milliseconds for one load run, or None."""
    tool, scheme, path, conns, extra = compare.SCENARIOS[scenario]
    u = compare.url(server, scheme, path)
    if tool == "wrk":
        script = os.path.join(work, "latency.lua")
        with open(script, "w") as f:
            f.write(WRK_SCRIPT)
        argv = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "-s", script, u]
        if extra.get("close"):
            argv[1:1] = ["-H", "Connection: close"]
        r = subprocess.run(compare.pinned(0, argv, pin), capture_output=True, text=True, timeout=seconds + 30)
        for line in r.stdout.splitlines():
            if line.startswith("LATENCY "):
                return tuple(int(x) / 1000.0 for x in line.split()[1:5])
        return None
    log = os.path.join(work, "h2load.log")
    argv = ["h2load", "-D", str(seconds), "-c", str(conns), "-m", str(extra.get("streams", 1)), "-t", "1",
            "--log-file", log, u]
    subprocess.run(compare.pinned(0, argv, pin), capture_output=True, text=True, timeout=seconds + 60)
    values = []
    with open(log) as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) >= 3:
                values.append(int(parts[2]) / 1000.0)
    values.sort()
    if not values:
        return None
    return percentile(values, 50), percentile(values, 99), percentile(values, 99.9), values[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vantage", required=True)
    ap.add_argument("--config", default=os.path.join(ROOT, "Benchmarks", "compare.yaml.template"))
    ap.add_argument("--scenarios", default="static-1k,https-1k,proxy-h1,https-proxy,h2-1k")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--peer", action="append", default=[], choices=["h2o", "haproxy"])
    ap.add_argument("--json")
    a = ap.parse_args()
    pin = (os.cpu_count() or 1) >= 2
    scenarios = [s for s in a.scenarios.split(",") if s]
    work = tempfile.mkdtemp(prefix="vantage-latency-")
    os.chmod(work, 0o755)
    www, cert, key = compare.make_tree(work)
    backend_proc, backend_port = compare.start_backend(work, pin)
    backend = f"127.0.0.1:{backend_port}"
    servers = [compare.nginx_server(work, www, cert, key, backend),
               compare.vantage_server(work, www, cert, key, backend, a.vantage, a.config, ["run", "--config", "{CONFIG}"])]
    makers = {"h2o": compare.h2o_server, "haproxy": compare.haproxy_server}
    for peer in dict.fromkeys(a.peer):
        servers.append(makers[peer](work, www, cert, key, backend))
    results = {}
    try:
        for scenario in scenarios:
            for server in servers:
                if "only" in server and scenario not in server["only"]:
                    continue  # a peer compare.py runs on some scenarios only (HAProxy serves no files)
                runs = []
                for _ in range(a.rounds):
                    p, ok = compare.start(server, pin)
                    if ok:
                        compare.load(server, scenario, 2, pin)  # warm-up, as compare.py does
                        figures = measure(server, scenario, a.seconds, pin, work)
                        if figures:
                            runs.append(figures)
                    compare.stop(p)
                if runs:
                    results.setdefault(scenario, {})[server["name"]] = [
                        round(statistics.median(run[i] for run in runs), 3) for i in range(4)]
    finally:
        compare.stop(backend_proc)
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'scenario':14} {'server':9} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'max ms':>8}")
    for scenario, by_server in results.items():
        for name, (p50, p99, p999, top) in by_server.items():
            print(f"{scenario:14} {name:9} {p50:8.2f} {p99:8.2f} {p999:9.2f} {top:8.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
