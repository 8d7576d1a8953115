#!/usr/bin/env python3
"""The NATS sink's sustained rate beside ClickHouse: a spool of --requests events is recorded first (tracking
only), then Vantage starts again with both sinks, ClickHouse (a throwaway clickhouse-server) and NATS (a
throwaway nats-server with a JetStream stream on the subject), and each sink's drain is timed from the metrics:
events per second published to NATS (each acknowledged by the stream) and shipped to ClickHouse, on this machine.

Usage: python3 Benchmarks/nats_sink.py --vantage .build/x86_64-unknown-linux-gnu/release/vantage [--requests 500000]
Needs h2load, nats-server, clickhouse-server, and nats-py (scripts/test.sh puts it in .build/test-venv).
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tracking import ClickHouse, free_port, metrics, start_vantage, wait_port  # noqa: E402

PYTHON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".build", "test-venv", "bin", "python")
STREAM_TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "IntegrationTests", "Backends", "nats_tool.py")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vantage", required=True)
    parser.add_argument("--requests", type=int, default=500_000)
    a = parser.parse_args()
    binary = os.path.abspath(a.vantage)
    scratch = tempfile.mkdtemp(prefix="nats-sink-")
    nats_port = free_port()
    nats = subprocess.Popen(["nats-server", "-a", "127.0.0.1", "-p", str(nats_port), "-js", "-sd", os.path.join(scratch, "js")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    clickhouse = ClickHouse(os.path.join(scratch, "clickhouse"))
    try:
        wait_port(nats_port, nats)
        url = f"nats://127.0.0.1:{nats_port}"
        subprocess.run([PYTHON, STREAM_TOOL, url, "create", "EVENTS", "vantage.events"], check=True)
        base = """listen: { http: "127.0.0.1:0" }
sites:
  - routes:
      - { path: /, respond: ok }
access_log: off
admin: { listen: "127.0.0.1:0" }
"""
        spool = f'tracking:\n  spool: {{ dir: "{scratch}/spool", max_size: 4GB }}\n'
        embedded = os.path.join(scratch, "embedded.yaml")
        with open(embedded, "w") as f:
            f.write(base + spool)
        both = os.path.join(scratch, "both.yaml")
        with open(both, "w") as f:
            f.write(base + spool + f'  clickhouse: {{ endpoints: ["{clickhouse.url}"], database: natsbench }}\n'
                    + f'  nats: {{ url: "{url}", subject: vantage.events }}\n')
        process, http, admin = start_vantage(binary, embedded, scratch)
        subprocess.run(["h2load", "--h1", "-n", str(a.requests), "-c", "32", "-t", "2", f"http://127.0.0.1:{http}/e?utm_source=bench"],
                       check=True, stdout=subprocess.DEVNULL)
        recorded = int(metrics(admin)["vantage_events_recorded_total"])
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        started = time.time()
        process, http, admin = start_vantage(binary, both, scratch)
        nats_done = clickhouse_done = None
        while nats_done is None or clickhouse_done is None:
            values = metrics(admin)
            now = time.time() - started
            if nats_done is None and values.get("vantage_nats_events_published_total", 0) >= recorded:
                nats_done = now
            if clickhouse_done is None and values.get("vantage_events_shipped_total", 0) >= recorded:
                clickhouse_done = now
            if now > 900:
                raise SystemExit(f"not drained in 15 minutes: {values}")
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        counted = subprocess.run([PYTHON, STREAM_TOOL, url, "count", "EVENTS"], check=True, capture_output=True, text=True).stdout.split()
        rows = int(clickhouse.query("SELECT count() FROM natsbench.events"))
        print(f"events recorded: {recorded}")
        print(f"NATS (JetStream, acknowledged): {recorded / nats_done:,.0f} events/s ({nats_done:.1f} s), stream holds {counted[0]} messages, {counted[1]} distinct ids")
        print(f"ClickHouse (alongside): {recorded / clickhouse_done:,.0f} events/s ({clickhouse_done:.1f} s), table holds {rows} rows")
    finally:
        clickhouse.stop()
        nats.terminate()
        nats.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
