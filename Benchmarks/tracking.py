#!/usr/bin/env python3
"""What tracking costs and how fast events reach ClickHouse, measured on this machine.

1. compare.py static-1k with tracking off, into the local spool only, and into a local ClickHouse (Debian's
   clickhouse-server, started here on a free port), one round each, the three modes interleaved for --rounds
   rounds. Each round carries its own nginx anchor, so the verdict is median(Vantage/nginx with tracking) /
   median(Vantage/nginx without): the price of tracking, with the machine's drift cancelled as far as it goes.
2. Shipping throughput: one million requests recorded into the spool with no ClickHouse configured, then Vantage
   restarted with ClickHouse configured; events/s = rows shipped / time from start to an empty spool.

Usage: Benchmarks/tracking.py [--rounds 3] [--requests 1000000]   (run from the repository root, after
scripts/build-release.sh; Benchmarks/run.sh installs nginx, wrk and h2load)
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARNESS = os.environ.get("HARNESS", os.path.join(ROOT, "..", "shared", "bench", "compare.py"))
TEMPLATE = os.path.join(ROOT, "Benchmarks", "compare.yaml.template")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, process=None, seconds=20):
    """Whether something accepts on the loopback `port` within `seconds` (False early if `process` exits)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class ClickHouse:
    """A throwaway clickhouse-server answering HTTP on a free loopback port."""

    def __init__(self, folder):
        self.folder = folder
        self.port = free_port()
        for sub in ("data", "tmp", "user_files", "format_schemas", "log"):
            os.makedirs(os.path.join(folder, sub), exist_ok=True)
        with open(os.path.join(folder, "config.xml"), "w") as f:
            f.write(f"""<?xml version="1.0"?><yandex>
<logger><level>warning</level><log>{folder}/log/server.log</log><errorlog>{folder}/log/error.log</errorlog><console>0</console></logger>
<listen_host>127.0.0.1</listen_host><http_port>{self.port}</http_port><path>{folder}/data/</path>
<tmp_path>{folder}/tmp/</tmp_path><user_files_path>{folder}/user_files/</user_files_path>
<format_schema_path>{folder}/format_schemas/</format_schema_path><users_config>{folder}/users.xml</users_config>
<default_profile>default</default_profile><default_database>default</default_database><timezone>UTC</timezone>
<mark_cache_size>268435456</mark_cache_size><max_concurrent_queries>100</max_concurrent_queries></yandex>""")
        with open(os.path.join(folder, "users.xml"), "w") as f:
            f.write("""<?xml version="1.0"?><yandex><profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
<users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
<quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows>
<read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas></yandex>""")
        self.process = subprocess.Popen(["/usr/sbin/clickhouse-server", f"--config-file={folder}/config.xml"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(self.url + "/ping", timeout=1).read() == b"Ok.\n":
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("clickhouse-server did not start")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def query(self, sql):
        return urllib.request.urlopen(self.url + "/", data=sql.encode(), timeout=60).read().decode().strip()

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def template_with(tracking_block, path):
    text = open(TEMPLATE).read()
    text = re.sub(r"\ntracking:\n(  .*\n?)+", "\n" + tracking_block, text)
    with open(path, "w") as f:
        f.write(text)
    return path


def compare(binary, config, rounds, label, scratch):
    out = os.path.join(scratch, f"compare-{label}.json")
    subprocess.run([sys.executable, HARNESS, "--vantage", binary, "--config", config, "--scenarios", "static-1k",
                    "--rounds", str(rounds), "--json", out], check=True, stdout=subprocess.DEVNULL)
    data = json.load(open(out))
    results = data["results"]
    return results["vantage"]["static-1k"]["rps"], results["nginx"]["static-1k"]["rps"]


def interleaved_ratios(binary, modes, rounds, scratch, what, make_template=None):
    """compare.py static-1k once per mode and round, the modes interleaved round by round so drift on the machine
    hits all alike; returns each mode's Vantage/nginx ratios (every run carries its own nginx anchor). A mode's value
    is its tracking block, or whatever `make_template(value, path)` turns into a template."""
    make_template = make_template or template_with
    ratios = {label: [] for label in modes}
    for round_number in range(rounds):
        for label, block in modes.items():
            config = make_template(block, os.path.join(scratch, f"{label}.yaml.template"))
            vantage_rps, nginx_rps = compare(binary, config, 1, f"{label}-{round_number}", scratch)
            ratios[label].append(vantage_rps / nginx_rps)
            print(f"round {round_number + 1} static-1k {what} {label:>10}: vantage {vantage_rps:>9.0f} req/s, "
                  f"nginx {nginx_rps:>9.0f} req/s, ratio {vantage_rps / nginx_rps:.3f}", flush=True)
    return ratios


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return -1


def metrics(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                pass
    return values


def start_vantage(binary, config, folder):
    path = os.path.join(folder, os.path.basename(config) + ".log")
    log = open(path, "w")
    process = subprocess.Popen([binary, "run", "--config", config], cwd=folder, stdout=log, stderr=log)
    deadline = time.time() + 30
    while time.time() < deadline:
        text = open(path).read()
        found = dict(re.findall(r"listening on (http|admin)://127\.0\.0\.1:(\d+)", text))
        if "http" in found and "admin" in found:
            return process, int(found["http"]), int(found["admin"])
        time.sleep(0.05)
    raise SystemExit("vantage did not start:\n" + open(path).read())


def shipping(binary, clickhouse, requests, scratch):
    folder = os.path.join(scratch, "shipping")
    os.makedirs(os.path.join(folder, "www"), exist_ok=True)
    base = f"""listen: {{ http: "127.0.0.1:0" }}
sites:
  - routes:
      - path: /
        respond: "ok"
access_log: off
admin: {{ listen: "127.0.0.1:0" }}
"""
    embedded = os.path.join(folder, "embedded.yaml")
    with open(embedded, "w") as f:
        f.write(base + f'tracking:\n  spool: {{ dir: "{folder}/spool", max_size: 4GB }}\n')
    shipped = os.path.join(folder, "shipped.yaml")
    with open(shipped, "w") as f:
        f.write(base + f'tracking:\n  spool: {{ dir: "{folder}/spool", max_size: 4GB }}\n'
                       f'  clickhouse: {{ endpoints: ["{clickhouse.url}"], database: shipping }}\n')
    process, http, admin = start_vantage(binary, embedded, folder)
    subprocess.run(["h2load", "--h1", "-n", str(requests), "-c", "32", "-t", "2", f"http://127.0.0.1:{http}/e?utm_source=bench"],
                   check=True, stdout=subprocess.DEVNULL)
    recorded = int(metrics(admin)["vantage_events_recorded_total"])
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    started = time.time()
    process, http, admin = start_vantage(binary, shipped, folder)
    while True:
        values = metrics(admin)
        if values.get("vantage_events_shipped_total", 0) >= recorded and values.get("vantage_events_queued", 1) == 0:
            break
        if time.time() - started > 600:
            raise SystemExit("shipping did not finish in 10 minutes")
        time.sleep(0.05)
    elapsed = time.time() - started
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    rows = int(clickhouse.query("SELECT count() FROM shipping.events"))
    return recorded, rows, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vantage", default=None, help="release binary (default: scripts/build-release.sh)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--skip-compare", action="store_true")
    args = parser.parse_args()
    binary = os.path.abspath(args.vantage) if args.vantage else subprocess.run([os.path.join(ROOT, "scripts", "build-release.sh")], check=True,
                                            capture_output=True, text=True).stdout.strip()
    scratch = tempfile.mkdtemp(prefix="vantage-tracking-bench-")
    clickhouse = ClickHouse(os.path.join(scratch, "clickhouse"))
    try:
        if not args.skip_compare:
            modes = {
                "off": "tracking: { enabled: false }\n",
                "spool": 'tracking:\n  spool: { dir: "{{WORKDIR}}/spool" }\n',
                "clickhouse": 'tracking:\n  spool: { dir: "{{WORKDIR}}/spool" }\n'
                              f'  clickhouse: {{ endpoints: ["{clickhouse.url}"] }}\n',
            }
            ratios = interleaved_ratios(binary, modes, args.rounds, scratch, "tracking")
            off = statistics.median(ratios["off"])
            for label in ("spool", "clickhouse"):
                on = statistics.median(ratios[label])
                print(f"tracking {label} vs off (median vantage/nginx ratios, {args.rounds} interleaved rounds): {on / off:.3f}")
            stored = clickhouse.query("SELECT count() FROM vantage.events")
            print(f"rows stored by the ClickHouse run: {stored}")
        recorded, rows, elapsed = shipping(binary, clickhouse, args.requests, scratch)
        print(f"shipping: {recorded} events recorded, {rows} rows in ClickHouse, drained in {elapsed:.2f} s "
              f"(restart included): {rows / elapsed:,.0f} events/s")
    finally:
        clickhouse.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
