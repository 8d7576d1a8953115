#!/usr/bin/env python3
"""WebSocket ingest figures: events per second on one core with many connected clients sending at a steady rate,
and the resident memory each connection costs.

Vantage (release build) runs with one event loop on CPU 1, the clients on CPU 0 (asyncio, one process per 250
connections). Each client opens /tr/v1/ws, then sends a tracker event (JSON text frames, or LZ4 binary frames
with --lz4) every 1/rate seconds for the run. Reported: events recorded per second (from /metrics), Vantage's CPU
share over the run (/proc/<pid>/stat), resident memory idle, with every connection open, and per connection.

Usage: python3 Benchmarks/websocket_ingest.py --vantage .build/x86_64-unknown-linux-gnu/release/vantage \
           [--clients 1000] [--rate 10] [--seconds 20] [--lz4]
Needs Python's websockets and lz4 packages (scripts/test.sh puts them in .build/test-venv).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tracking import free_port, rss_kib, wait_port  # noqa: E402

CLIENT = r'''
import asyncio, json, sys, time
import lz4.block, websockets

async def one(url, rate, seconds, compressed, index, opened):
    async with websockets.connect(url, open_timeout=30, compression=None, max_queue=None) as socket:
        opened.append(1)
        while len(opened) < int(sys.argv[6]):
            await asyncio.sleep(0.05)
        await asyncio.sleep((index % 100) / 100 / rate)
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            body = json.dumps({"ename": "ws_bench", "vid": f"bench-{index}", "url": "https://example.com/app",
                               "etyp": "move", "params": {"n": n, "x": 10, "y": 20}})
            await socket.send(lz4.block.compress(body.encode(), store_size=True) if compressed else body)
            n += 1
            await asyncio.sleep(1 / rate)
        await asyncio.sleep(float(sys.argv[7]))

async def main():
    url, count, rate, seconds, compressed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5] == "1"
    opened = []
    await asyncio.gather(*(one(url, rate, seconds, compressed, i, opened) for i in range(count)))

asyncio.run(main())
'''


def metric(admin, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=10).read().decode()
    match = re.search(r"^" + re.escape(name) + r" (\d+)", text, re.M)
    return int(match.group(1)) if match else 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vantage", required=True)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--lz4", action="store_true")
    parser.add_argument("--python", default=os.path.join(os.path.dirname(__file__), "..", ".build", "test-venv", "bin", "python"))
    a = parser.parse_args()
    work = tempfile.mkdtemp(prefix="ws-ingest-")
    port, admin = free_port(), free_port()
    config = os.path.join(work, "vantage.yaml")
    with open(config, "w") as f:
        f.write(f"""listen: {{ http: "127.0.0.1:{port}" }}
admin: {{ listen: "127.0.0.1:{admin}" }}
threads: 1
access_log: off
limits: {{ max_connections: 20000 }}
sites:
  - routes:
      - {{ path: /, respond: ok }}
tracking:
  spool: {{ dir: "{work}/spool" }}
  api: true
""")
    vantage = subprocess.Popen(["taskset", "-c", "1", os.path.abspath(a.vantage), "run", "--config", config],
                               stdout=open(os.path.join(work, "vantage.out"), "w"), stderr=subprocess.STDOUT, cwd=work)
    try:
        wait_port(port, vantage)
        idle = rss_kib(vantage.pid)
        script = os.path.join(work, "client.py")
        with open(script, "w") as f:
            f.write(CLIENT)
        per_process = 250
        groups = [min(per_process, a.clients - i) for i in range(0, a.clients, per_process)]
        url = f"ws://127.0.0.1:{port}/tr/v1/ws"
        clients = [subprocess.Popen(["taskset", "-c", "0", a.python, script, url, str(n), str(a.rate), str(a.seconds),
                                     "1" if a.lz4 else "0", str(n), "3"]) for n in groups]
        deadline = time.time() + 60
        while metric(admin, "vantage_websocket_ingest_connections") < a.clients and time.time() < deadline:
            time.sleep(0.2)
        connected = metric(admin, "vantage_websocket_ingest_connections")
        rss_open = rss_kib(vantage.pid)
        start_events = metric(admin, 'vantage_websocket_ingest_messages_total{result="recorded"}')
        start_cpu, start_time = cpu_seconds(vantage.pid), time.time()
        time.sleep(a.seconds * 0.8)
        events = metric(admin, 'vantage_websocket_ingest_messages_total{result="recorded"}') - start_events
        cpu = cpu_seconds(vantage.pid) - start_cpu
        elapsed = time.time() - start_time
        peak = rss_kib(vantage.pid)
        for client in clients:
            client.wait(timeout=a.seconds + 120)
        refused = metric(admin, 'vantage_websocket_ingest_messages_total{result="refused"}')
        limited = metric(admin, 'vantage_websocket_ingest_messages_total{result="rate_limited"}')
        result = {
            "clients": a.clients, "connected": connected, "rate_per_client": a.rate, "lz4": a.lz4,
            "events_per_second": round(events / elapsed), "vantage_cpu_share": round(cpu / elapsed, 3),
            "events_per_cpu_second": round(events / cpu) if cpu else None,
            "rss_idle_kib": idle, "rss_connected_kib": rss_open, "rss_under_load_kib": peak,
            "rss_per_connection_kib": round((rss_open - idle) / max(1, connected), 1),
            "refused": refused, "rate_limited": limited,
        }
        print(json.dumps(result, indent=2))
    finally:
        vantage.terminate()
        vantage.wait(timeout=30)


if __name__ == "__main__":
    main()
